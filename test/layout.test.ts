// The parts as leaves: which top-level folder may import which, checked on every import, followed file by file.
//
// protocol/ imports no other part; hardware/ only protocol/; firmware-host/ protocol/ and hardware/; alarm-center/
// protocol/ only. Production code also shares bin/cli-kit.ts (option parsing), which imports no part. device-sim/
// (simulator, demo, harness, soak), bin/ (the dispatcher) and test/ may import anything. Following imports
// transitively catches a path through a shared file, such as production code reaching the simulator through bin/cli.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PARTS = ['protocol', 'hardware', 'firmware-host', 'alarm-center', 'device-sim', 'bin', 'test'] as const;
type Part = (typeof PARTS)[number];

/** What each production part may reach, directly or through any chain of imports. */
const MAY_REACH: Partial<Record<Part, readonly string[]>> = {
  protocol: ['protocol'],
  hardware: ['hardware', 'protocol'],
  'firmware-host': ['firmware-host', 'protocol', 'hardware', 'bin/cli-kit.ts'],
  'alarm-center': ['alarm-center', 'protocol', 'bin/cli-kit.ts'],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'public' ? [] : sources(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

// Static imports and re-exports (type-only ones too: they couple the parts just the same) and dynamic imports.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

/** Relative imports of a file, resolved to files (a `.js` specifier names the `.ts` beside it). */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const spec = m[1]!;
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    const ts = target.replace(/\.js$/, '.ts');
    out.push(existsSync(ts) ? ts : target);
  }
  return out;
}

const rel = (f: string) => relative(ROOT, f).split(sep).join('/');
const partOf = (f: string) => rel(f).split('/')[0]!;
const allowed = (file: string, list: readonly string[]) => list.some((a) => rel(file) === a || rel(file).startsWith(`${a}/`));

/** Every file reachable from `start`, each with the chain of imports that reaches it. */
function reach(start: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[start, [rel(start)]]]);
  const queue = [start];
  while (queue.length > 0) {
    const f = queue.shift()!;
    if (!existsSync(f)) continue;
    for (const t of importsOf(f)) {
      if (seen.has(t)) continue;
      seen.set(t, [...seen.get(f)!, rel(t)]);
      queue.push(t);
    }
  }
  return seen;
}

function violations(part: Part): string[] {
  const may = MAY_REACH[part]!;
  const bad: string[] = [];
  for (const file of sources(join(ROOT, part))) {
    for (const [target, chain] of reach(file)) {
      if (!allowed(target, may)) bad.push(chain.join(' -> '));
    }
  }
  return [...new Set(bad)];
}

describe('the parts as leaves', () => {
  it.each(Object.keys(MAY_REACH) as Part[])('%s reaches only what it may', (part) => {
    expect(violations(part)).toEqual([]);
  });

  it('no production file imports device-sim/ or test/, none under alarm-center/ imports firmware-host/ (direct imports)', () => {
    const direct: string[] = [];
    for (const part of ['firmware-host', 'alarm-center', 'protocol', 'hardware'] as const) {
      for (const file of sources(join(ROOT, part))) {
        for (const t of importsOf(file)) {
          const to = partOf(t);
          if (to === 'device-sim' || to === 'test' || (part === 'alarm-center' && to === 'firmware-host')) direct.push(`${rel(file)} -> ${rel(t)}`);
        }
      }
    }
    expect(direct).toEqual([]);
  });

  it('sees every kind of import: a check that finds nothing must be able to find something', () => {
    const file = join(ROOT, 'firmware-host', 'src', 'example.ts');
    const text = [
      "import { a } from '../../device-sim/src/simulator.js';",
      "import type { B } from '../../test/device-sim/harness.js';",
      "export * from '../../alarm-center/src/app.js';",
      "const m = await import('../../device-sim/src/soak/cli.js');",
      "import '../../test/setup.js';",
      "import pino from 'pino';",
    ].join('\n');
    expect(importsOf(file, text).map(rel)).toEqual([
      'device-sim/src/simulator.ts',
      'test/device-sim/harness.ts',
      'alarm-center/src/app.ts',
      'device-sim/src/soak/cli.ts',
      'test/setup.js',
    ]);
    // The dispatcher reaches the simulator, so production code importing it would break the rule through it.
    expect([...reach(join(ROOT, 'bin', 'cli.ts')).keys()].some((f) => partOf(f) === 'device-sim')).toBe(true);
    expect(allowed(join(ROOT, 'bin', 'cli.ts'), MAY_REACH['firmware-host']!)).toBe(false);
  });

  it('the top-level README and each part\'s README show this layout in the same table', () => {
    const top = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = /## Layout\n\n((?:\|.*\|\n)+)/.exec(top)?.[1];
    expect(table).toBeDefined();
    const rows = table!.trim().split('\n').slice(2);
    expect(rows.map((r) => /^\| `([a-z-]+)\/`/.exec(r)?.[1])).toEqual(['protocol', 'hardware', 'firmware-host', 'alarm-center', 'device-sim', 'bin', 'test']);
    for (const [part, may] of Object.entries(MAY_REACH)) {
      const row = rows.find((r) => r.startsWith(`| \`${part}/\``))!;
      const others = may.filter((m) => m !== part && !m.includes('.')).map((m) => `\`${m}/\``);
      expect(row.split('|')[3]!.trim(), part).toBe(others.length ? others.join(', ') : 'no other part');
    }
    for (const readme of ['protocol', 'hardware', 'firmware-host', 'alarm-center', 'device-sim'].map((p) => join(ROOT, p, 'README.md'))) {
      expect(readFileSync(readme, 'utf8'), rel(readme)).toContain(table!);
    }
  });

  it('every top-level folder with code is a part this check knows', () => {
    const folders = readdirSync(ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !['node_modules', 'dist', 'var', 'coverage', 'test-artifacts'].includes(e.name))
      .map((e) => e.name)
      .filter((d) => sources(join(ROOT, d)).length > 0);
    expect(folders.sort()).toEqual([...PARTS].sort());
  });
});

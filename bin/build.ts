// `npm run build`: compiles the TypeScript with tsc into dist/ and copies beside it every other file of the shipped parts
// but documentation: messages, profiles, screen pages, examples, the install kit.
//
// The layout of dist/ mirrors the sources (dist/protocol/src/i18n.js beside dist/protocol/messages/), so code that
// finds its data through `new URL('../messages/', import.meta.url)` works unchanged from either tree.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The folders compiled into dist/; test/ is not shipped. */
export const SHIPPED = ['protocol', 'firmware-host', 'device-sim', 'alarm-center', 'hardware', 'bin'] as const;
/** The entry point's path inside a build. */
export const ENTRY = join('bin', 'dosis.js');
const TSC = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

export class BuildError extends Error {
  readonly code = 'DOSIS_ERR_BUILD';
}

const DEV_LAUNCHER = join(ROOT, 'bin', 'dosis.js');

/** Files that are not TypeScript sources nor documentation: messages, profiles, screen pages, examples, units. */
function assets(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...assets(path));
    // bin/dosis.js is the development launcher; the build's own comes from bin/dosis.ts.
    else if (!/\.(ts|md)$/.test(entry.name) && path !== DEV_LAUNCHER) out.push(path);
  }
  return out;
}

/** Builds into outDir (dist/ by default), replacing what was there. Returns the path of the entry point. */
export function build(outDir = join(ROOT, 'dist')): string {
  const out = resolve(outDir);
  rmSync(out, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8' });
  if (tsc.status !== 0) throw new BuildError(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  for (const part of SHIPPED) {
    for (const file of assets(join(ROOT, part))) {
      const target = join(out, relative(ROOT, file));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(file, target);
    }
  }
  // The compiled files are ES modules wherever dist/ is copied to, with or without the project's package.json.
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
  const entry = join(out, ENTRY);
  chmodSync(entry, 0o755);
  return entry;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const entry = build(process.argv[2]);
    process.stdout.write(`built ${relative(process.cwd(), entry) || entry}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

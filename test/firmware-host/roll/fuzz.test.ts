// Random garbage and random mutations of a good manifest never make the validator throw, and its answer is always well-formed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { locateJsonError } from '../../../firmware-host/src/roll/json-locate.js';
import { PROBLEM_CODES } from '../../../firmware-host/src/roll/problems.js';
import { validateManifest, type ValidateContext, type ValidationResult } from '../../../firmware-host/src/roll/validate.js';

/** mulberry32: small, seeded, good enough to pick mutations reproducibly. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  return { next, int, pick };
}

const VALID = readFileSync(new URL('./fixtures/valid.json', import.meta.url), 'utf8');
const NOW = Date.parse('2027-05-01T00:00:00Z');

/** Checks the shape and the internal consistency of any answer. */
function wellFormed(r: ValidationResult): void {
  expect(typeof r.ok).toBe('boolean');
  for (const p of r.problems) {
    expect(p.code in PROBLEM_CODES && p.code !== 'internal', `${p.code}: ${p.message}`).toBe(true);
    expect(p.severity).toBe(PROBLEM_CODES[p.code].severity);
    expect(typeof p.path === 'string' && typeof p.message === 'string' && p.message.length > 0).toBe(true);
  }
  expect(r.ok).toBe(!r.problems.some((p) => p.severity === 'error'));
  if (!r.ok) {
    expect(r.pouches).toEqual([]);
    return;
  }
  expect(r.pouches.length).toBeGreaterThan(0);
  r.pouches.forEach((p, i) => {
    expect(p.position).toBe(i + 1);
    expect(p.slot).toBe(i);
    expect(Number.isFinite(p.intakeAtMs) && p.intakeAtMs >= NOW).toBe(true);
    if (i > 0) expect(p.intakeAtMs).toBeGreaterThan((r.pouches[i - 1] as { intakeAtMs: number }).intakeAtMs);
    expect(p.pillCount >= 1 && p.pillCount <= 20).toBe(true);
  });
}

function randomCtx(r: ReturnType<typeof rng>): ValidateContext {
  const ctx: ValidateContext = { slotCount: r.pick([56, 8, 1, 256]), nowMs: NOW };
  if (r.next() < 0.5) ctx.citizenId = r.pick(['C7F3A9B2', 'C0000001']);
  if (r.next() < 0.3) ctx.loaded = { rollId: r.pick(['R27W17A', 'R27W18A']), firstIntakeAtMs: NOW - 6 * 86_400_000, lastIntakeAtMs: NOW + r.int(5) * 86_400_000 };
  return ctx;
}

const JSONISH = '{}[]",:0123456789.-+eE truefalsenull\n\\u"abc';

describe('fuzz: validateManifest never throws', () => {
  it('random bytes and JSON-ish text (2000 cases)', () => {
    const r = rng(0xd051);
    for (let i = 0; i < 2000; i++) {
      const len = r.int(300);
      const input =
        i % 2 === 0
          ? Buffer.from(Array.from({ length: len }, () => r.int(256)))
          : Array.from({ length: len }, () => JSONISH[r.int(JSONISH.length)]).join('');
      wellFormed(validateManifest(input, randomCtx(r)));
    }
  });

  it('random mutations of a valid manifest (2500 cases)', () => {
    const r = rng(0xf00d);
    const values: (() => unknown)[] = [
      () => null, () => true, () => -1, () => 0, () => 1.5, () => 1e308, () => -0, () => 2 ** 53 + 1, () => '', () => 'x'.repeat(300),
      () => '2027-02-30', () => '2027-05-03', () => '1899-01-01', () => '25:00', () => '02:30', () => '23:59', () => 'Europe/Copenhagen',
      () => 'Mars/Olympus', () => '__proto__', () => [], () => ({}), () => Array.from({ length: 70 }, (_, k) => k),
      () => ({ earlyMin: r.int(3000) - 100, closeAfterMin: r.int(50), overdueAfterMin: r.int(200) }), () => [{ name: 'x', strength: 'y', count: r.int(40) }],
      () => r.int(1200) - 100, () => 'R27W18A', () => '\u0000\ud800',
    ];
    let valid = 0;
    for (let i = 0; i < 2500; i++) {
      const doc = JSON.parse(VALID) as Record<string, unknown>;
      const mutations = 1 + r.int(4);
      for (let m = 0; m < mutations; m++) {
        // Walk down a random path, then replace, delete, add, duplicate or swap there.
        let node: unknown = doc;
        let parent: Record<string, unknown> | unknown[] | undefined;
        let key: string | number | undefined;
        for (let depth = 0; depth < 1 + r.int(5) && node !== null && typeof node === 'object'; depth++) {
          const keys: (string | number)[] = Array.isArray(node) ? node.map((_, k) => k) : Object.keys(node);
          if (keys.length === 0) break;
          parent = node as Record<string, unknown> | unknown[];
          key = r.pick(keys);
          node = (parent as Record<string | number, unknown>)[key];
        }
        if (parent === undefined || key === undefined) continue;
        const op = r.int(5);
        const target = parent as Record<string | number, unknown>;
        if (op === 0 || op === 1) target[key] = r.pick(values)();
        else if (op === 2) {
          if (Array.isArray(parent)) parent.splice(key as number, 1);
          else delete target[key];
        } else if (op === 3) {
          if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
          else target[`extra${r.int(3)}`] = r.pick(values)();
        } else if (Array.isArray(parent) && parent.length > 1) {
          const other = r.int(parent.length);
          [parent[key as number], parent[other]] = [parent[other], parent[key as number]];
        }
      }
      const result = validateManifest(r.next() < 0.5 ? JSON.stringify(doc) : Buffer.from(JSON.stringify(doc, null, 1)), randomCtx(r));
      wellFormed(result);
      if (result.ok) valid++;
    }
    // The mutations must not be so harsh that the checks past the schema never run on a valid roll.
    expect(valid).toBeGreaterThan(50);
  });

  it('text edits of a valid manifest: the syntax locator agrees with JSON.parse (1500 cases)', () => {
    const r = rng(0xbeef);
    for (let i = 0; i < 1500; i++) {
      let text = VALID;
      for (let m = 0; m < 1 + r.int(3); m++) {
        const at = r.int(text.length + 1);
        const op = r.int(3);
        const ch = r.next() < 0.7 ? (JSONISH[r.int(JSONISH.length)] as string) : String.fromCharCode(r.int(0x3000));
        text = op === 0 ? text.slice(0, at) + text.slice(at + 1) : op === 1 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const located = locateJsonError(text);
      expect(located === undefined, text).toBe(parses);
      const result = validateManifest(text, randomCtx(r));
      wellFormed(result);
      if (!parses) expect(result.problems).toEqual([expect.objectContaining({ code: 'not_json', path: `${located?.line}:${located?.column}` })]);
    }
  });

  it('survives hostile shapes: deep nesting, prototype keys, a huge pouch list, lone surrogates', () => {
    const ctx = { slotCount: 56, nowMs: NOW };
    const deep = validateManifest('['.repeat(1_000_000), ctx);
    expect(deep.problems[0]).toMatchObject({ code: 'not_json', path: '1:1000001' });
    wellFormed(validateManifest(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, ctx));
    wellFormed(validateManifest('{"__proto__":{"ok":true},"constructor":{"prototype":{}},"pouches":{"length":5}}', ctx));
    const doc = JSON.parse(VALID);
    // Close to the size cap: 15,000 small pouches, each with several problems.
    doc.pouches = Array.from({ length: 15_000 }, (_, k) => ({ position: k + 1, intakeDate: '2027-05-03', intakeTime: '08:00', drugs: [], pillCount: 1 }));
    const started = performance.now();
    const big = validateManifest(JSON.stringify(doc), ctx);
    expect(performance.now() - started).toBeLessThan(5000);
    // The roll-level problem first, then the first pouches' problems in document order, then the count of the rest.
    expect(big.problems.slice(0, 2).map((p) => `${p.path} ${p.code}`)).toEqual(['/pouches too_many_pouches', '/pouches/0/pillCount pill_count_mismatch']);
    expect(big.problems.at(-1)?.code).toBe('too_many_problems');
    wellFormed(big);
    wellFormed(validateManifest(VALID.replace('Inger', '\ud800'), ctx));
  });
});

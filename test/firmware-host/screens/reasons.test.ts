// Every reason the controller can give the citizen's screen has words in the catalogue (citizen.reason.<code>), in
// Danish and English. The reasons are read from the controller's sources, so a new one fails here until it has words.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasMessage, t } from '../../../protocol/src/i18n.js';

const SOURCES = [
  'dosing/dose-machine.ts',
  'dosing/judge.ts',
  'dosing/pill-count.ts',
  'controller.ts',
  'robot.ts',
  'store/store.ts',
  'link/motion-exchange.ts',
  'screens/controller-backend.ts',
];
/** Reasons of a dose that ended well or was missed: kept with the dose, never shown as an error (not yellow). */
const NOT_ERRORS = ['taken_after_close', 'overlap_resolved', 'left_in_cup', 'not_taken'];

const read = (file: string) => readFileSync(new URL(`../../../firmware-host/src/${file}`, import.meta.url), 'utf8');
const CODE = /(?<![=!]==?\s*)'([a-z][a-z0-9_]*)'/g;

/** The snake_case literals of an expression, but not those it compares with (`v.kind === 'yellow'`). */
const codesIn = (expr: string) => [...expr.matchAll(CODE)].map((m) => m[1]!);

/** Every reason code the sources can put on a dose or on the citizen's view. */
export function producedReasons(): Set<string> {
  const files = SOURCES.filter((f) => {
    try {
      read(f);
      return true;
    } catch {
      return false;
    }
  }).map(read);
  const all = files.join('\n');
  const constants = new Map([...all.matchAll(/const ([A-Z][A-Z0-9_]*)\s*=\s*'([a-z][a-z0-9_]*)'/g)].map((m) => [m[1]!, m[2]!]));
  const union = (name: string) => codesIn(new RegExp(`type ${name}\\s*=\\s*([^;]*);`).exec(all)?.[1] ?? '');
  const notices = union('Notice');
  const reasons = new Set<string>();
  for (const src of files) {
    // `reason: <expression>` (or `reason = …`) in values and types: literals, constants, helpers it calls, and templates over a notice.
    for (const m of src.matchAll(/\breason(?::|\s*=(?!=))\s*((?:`[^`]*`|[^,;{}()`]|\([^()]*\))+)/g)) {
      const expr = m[1]!;
      for (const c of codesIn(expr)) reasons.add(c);
      for (const [, name] of expr.matchAll(/\b([A-Z][A-Z0-9_]*)\b/g)) if (constants.has(name!)) reasons.add(constants.get(name!)!);
      for (const [, helper] of expr.matchAll(/\b([a-z]\w*)\(/g)) {
        const body = new RegExp(`const ${helper} = [^\\n]*=> \\{([\\s\\S]*?)\\n\\};`).exec(src)?.[1];
        for (const c of codesIn(body ?? '')) reasons.add(c);
      }
      for (const [, prefix] of expr.matchAll(/`([a-z_]+)\$\{[^}]*notice[^}]*\}`/g)) for (const n of notices) reasons.add(`${prefix}${n}`);
    }
    // Named unions of reasons (judge.ts's YellowReason) and the notices the screen shows as errors.
    for (const m of src.matchAll(/type \w*Reason\s*=\s*([^;]*);/g)) for (const c of codesIn(m[1]!)) reasons.add(c);
    for (const m of src.matchAll(/const NOTICE_ERRORS\s*=\s*new Set\(\[([^\]]*)\]\)/g)) for (const c of codesIn(m[1]!)) reasons.add(c);
  }
  return reasons;
}

describe("the citizen screen's reasons", () => {
  const produced = producedReasons();

  it('finds the reasons of every part that gives one (the dose machine, the judge, the store, the robot, the screen backend)', () => {
    for (const known of ['jam', 'label_mismatch', 'latched', 'mcu_refused', 'overcount', 'undercount_after_retry', 'pouch_expired', 'mcu_reset', 'unknown', 'device_fault', 'cup_missing', 'link_lost', 'not_dispensed_cup_missing']) {
      expect(produced, known).toContain(known);
    }
    for (const r of NOT_ERRORS) expect(produced, `${r} is no longer produced: take it off NOT_ERRORS`).toContain(r);
  });

  it('has words for every reason in Danish and English, never the code itself', () => {
    const missing = [...produced].filter((r) => !NOT_ERRORS.includes(r) && !hasMessage(`citizen.reason.${r}`));
    expect(missing).toEqual([]);
    for (const r of produced) {
      if (NOT_ERRORS.includes(r)) continue;
      for (const lang of ['da', 'en'] as const) {
        const text = t(lang, `citizen.reason.${r}`);
        expect(text, `${lang} ${r}`).not.toMatch(/_|^\s*$/);
      }
    }
  });
});

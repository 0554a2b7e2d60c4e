// The pages' message formatter (public/messages.js) against intl-messageformat, the library the host formats the
// same catalogue with: every message of the pages' areas, in both languages, with plural counts around each rule.

import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { IntlMessageFormat } from 'intl-messageformat';
import { describe, expect, it } from 'vitest';
import { LANGS, LOCALES, messagesFor, type Lang } from '../../../protocol/src/i18n.js';
import { CITIZEN_AREAS, PHARMACY_AREAS } from '../../../firmware-host/src/screens/server.js';

type Formatter = { msg(key: string, values?: Record<string, unknown>): string; has(key: string): boolean };
type PageMessages = { formatter(messages: Record<string, string>, locale: string): Formatter };

/** Loads the page script as a browser would (a classic script that sets window.DosisMessages). */
export function loadPageFormatter(): PageMessages {
  const source = readFileSync(new URL('../../../firmware-host/src/screens/public/messages.js', import.meta.url), 'utf8');
  const window: { DosisMessages?: PageMessages } = {};
  runInNewContext(source, { window, Intl });
  if (!window.DosisMessages) throw new Error('messages.js did not set window.DosisMessages');
  return window.DosisMessages;
}

// intl-messageformat's element types (@formatjs/icu-messageformat-parser TYPE).
const ARGUMENT = 1;
const SELECT = 5;
const PLURAL = 6;
const SUPPORTED = new Set([0, ARGUMENT, SELECT, PLURAL, 7]);
type Element = { type: number; value: string; options?: Record<string, { value: Element[] }> };

/** The arguments of a message: name → 'text' | 'plural' | the select's cases. */
function argumentsOf(elements: Element[], out = new Map<string, 'text' | 'plural' | string[]>()): Map<string, 'text' | 'plural' | string[]> {
  for (const e of elements) {
    if (!SUPPORTED.has(e.type)) throw new Error(`element type ${e.type} (${e.value}) is not one the pages' formatter supports`);
    if (e.type === ARGUMENT && !out.has(e.value)) out.set(e.value, 'text');
    if (e.type === PLURAL) out.set(e.value, 'plural');
    if (e.type === SELECT) out.set(e.value, Object.keys(e.options ?? {}));
    for (const o of Object.values(e.options ?? {})) argumentsOf(o.value, out);
  }
  return out;
}

const COUNTS = [0, 1, 2, 5, 11, 21, 1000];

/** Every combination of values worth trying: each plural count, each select case, a text with markup characters. */
function valueSets(args: Map<string, 'text' | 'plural' | string[]>): Record<string, string | number>[] {
  let sets: Record<string, string | number>[] = [{}];
  for (const [name, kind] of args) {
    const choices: (string | number)[] = kind === 'text' ? [`<${name} & 'x'>`] : kind === 'plural' ? COUNTS : [...kind, 'something-else'];
    sets = sets.flatMap((s) => choices.map((c) => ({ ...s, [name]: c })));
  }
  return sets;
}

describe("the pages' message formatter", () => {
  const page = loadPageFormatter();

  for (const lang of LANGS) {
    it(`formats every message of the pages' areas as intl-messageformat does (${lang})`, () => {
      const messages = messagesFor(lang as Lang, [...new Set([...CITIZEN_AREAS, ...PHARMACY_AREAS])]);
      const f = page.formatter(messages, LOCALES[lang]);
      let compared = 0;
      for (const [key, text] of Object.entries(messages)) {
        const reference = new IntlMessageFormat(text, LOCALES[lang]);
        for (const values of valueSets(argumentsOf(reference.getAst() as Element[]))) {
          expect(f.msg(key, values), `${key} ${JSON.stringify(values)}`).toBe(String(reference.format(values)));
          compared += 1;
        }
      }
      expect(compared).toBeGreaterThan(150);
    });
  }

  it("follows ICU's apostrophe quoting and =N cases, and gives an unknown key back as itself", () => {
    const cases: Record<string, string> = {
      apostrophe: "the roll's pouch",
      doubled: "it''s",
      quoted: "'{literal}' and '#' outside a plural",
      pound: "{n, plural, =0 {none} one {# pouch '#'} other {# pouches}}",
      nested: '{n, plural, one {{who} took # pill} other {{who} took # pills}}',
      select: '{kind, select, load {loaded} other {changed}}',
    };
    const f = page.formatter(cases, 'en-GB');
    for (const [key, text] of Object.entries(cases)) {
      for (const values of [{ n: 0, who: 'Bo', kind: 'load' }, { n: 1, who: 'Bo', kind: 'x' }, { n: 1234, who: 'Bo', kind: 'load' }]) {
        expect(f.msg(key, values)).toBe(String(new IntlMessageFormat(text, 'en-GB').format(values)));
      }
    }
    expect(f.msg('pound', { n: 1234 })).toBe('1,234 pouches');
    expect(page.formatter({}, 'da-DK').msg('pharmacy.screen.nope')).toBe('pharmacy.screen.nope');
  });
});

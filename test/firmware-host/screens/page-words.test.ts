// Every word on the robot's screens comes from the message catalogue: no page script or page holds words of its own,
// and every catalogue key a page names exists, in an area the server puts in that page, in both languages.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { messagesFor } from '../../../protocol/src/i18n.js';
import { CITIZEN_AREAS, PHARMACY_AREAS } from '../../../firmware-host/src/screens/server.js';
import { htmlTexts, looksLikeWords, scriptLiterals } from './page-source.js';

const read = (name: string) => readFileSync(new URL(`../../../firmware-host/src/screens/public/${name}`, import.meta.url), 'utf8');

const PAGES = [
  { page: 'pharmacy', scripts: ['pharmacy.js', 'messages.js'], html: 'pharmacy.html', areas: PHARMACY_AREAS },
  { page: 'citizen', scripts: ['citizen.js', 'messages.js'], html: 'citizen.html', areas: CITIZEN_AREAS },
  // The receipt is rendered on the host from the catalogue (screens/receipts.ts); its script has no words either.
  { page: 'receipt', scripts: ['receipt.js'], html: null, areas: ['pharmacy'] },
] as const;

const KEY = /^(?:citizen|common|pharmacy|roll|centre|robot)\.[\w.]*\w$/;
/** A key built at run time from a code: the page must check it exists (words.has) and fall back, never show it raw. */
const DYNAMIC_PREFIXES = new Set(['citizen.reason.', 'roll.problem.', 'pharmacy.screen.error.']);

/** The Danish texts of the areas: a literal that is one of them is a word (the English ones are also ids: "pin", "error"). */
function catalogueTexts(areas: readonly string[]): Set<string> {
  return new Set(Object.values(messagesFor('da', areas)).map((text) => text.trim().toLowerCase()));
}

/** The user-visible literals of a script: what reads like words, other than a developer's error message. */
function wordsIn(src: string, texts: ReadonlySet<string>) {
  return scriptLiterals(src).filter((l) => l.callee !== 'Error' && looksLikeWords(l.text, texts));
}

describe('the words on the screens', () => {
  for (const { page, scripts, html, areas } of PAGES) {
    const texts = catalogueTexts(areas);

    it(`${page}: the page scripts hold no words of their own (only the catalogue's keys and the locale codes)`, () => {
      for (const file of scripts) {
        const src = read(file);
        expect(src, `${file} still has a TEXT object`).not.toMatch(/\bTEXT\b|\bt\(\)\.|\btx\.|data-t\b/);
        expect(wordsIn(src, texts).map((l) => `${file}:${l.line}: ${JSON.stringify(l.text)}`)).toEqual([]);
        const locales = scriptLiterals(src).map((l) => l.text).filter((x) => /^[a-z]{2,3}(?:-[A-Za-z]{2,4})+$/.test(x));
        expect(locales.filter((x) => x !== 'da-DK' && x !== 'en-GB'), `${file}: locale codes`).toEqual([]);
      }
    });

    if (html) {
      it(`${page}: the HTML shows nothing before its script fills it from the catalogue`, () => {
        expect(htmlTexts(read(html))).toEqual([]);
        expect(read(html)).not.toMatch(/\bdata-t=/);
      });
    }

    it(`${page}: every catalogue key the page names exists in its areas, in both languages`, () => {
      const inPage = { da: messagesFor('da', areas), en: messagesFor('en', areas) };
      const literals = scripts.flatMap((f) => scriptLiterals(read(f)).map((l) => l.text));
      const keys = new Set(literals.filter((t) => KEY.test(t)));
      if (html) for (const m of read(html).matchAll(/\bdata-m="([^"]*)"/g)) keys.add(m[1]!);
      const missing = [...keys].filter((k) => !(k in inPage.da) || !(k in inPage.en));
      expect(missing).toEqual([]);
      // Keys made from a code at run time: only the known families, each guarded by has() in the script.
      const prefixes = literals.filter((t) => /^(?:citizen|common|pharmacy|roll)\.[\w.]*\.$/.test(t));
      expect(prefixes.filter((p) => !DYNAMIC_PREFIXES.has(p))).toEqual([]);
      for (const file of scripts) for (const prefix of DYNAMIC_PREFIXES) {
        const src = read(file);
        if (src.includes(`\`${prefix}\${`)) expect(src, `${file} shows ${prefix}… only when it exists`).toMatch(/words\.has\(key\)/);
      }
      if (page !== 'receipt') expect(keys.size).toBeGreaterThan(20);
    });
  }

  it("has the pharmacy screen's words for every refusal of the store and of the care routes", () => {
    const src = (f: string) => readFileSync(new URL(`../../../firmware-host/src/${f}`, import.meta.url), 'utf8');
    const store = [...src('store/store.ts').matchAll(/StoreError\('(DOSIS_ERR_\w+)'/g)].map((m) => m[1]!);
    const server = src('screens/server.ts');
    // The care routes' own refusals: not an administrator, a wrong PIN for travel.
    const care = [...server.matchAll(/(?:ScreenError\(|error: )'(DOSIS_ERR_(?:NOT_ADMIN|PIN_\w+))'/g)].map((m) => m[1]!);
    const codes = new Set([...store, ...care]);
    expect(codes.size).toBeGreaterThan(10);
    const da = messagesFor('da', ['pharmacy']);
    expect([...codes].filter((c) => !(`pharmacy.screen.error.${c}` in da))).toEqual([]);
  });

  it('catches words in a page script, in quotes, templates and plurals, and passes ids, paths, selectors and regexes', () => {
    const texts = catalogueTexts(PHARMACY_AREAS);
    const sample = [
      "const TEXT = { da: { title: 'dosis — apotek', logout: 'Log ud', firmware: 'Firmware', severity: { error: 'fejl' } } };",
      'const wrongPin = (n) => `Forkert medarbejder-id eller PIN-kode. ${n} forsøg tilbage.`;',
      "const locked = (min) => `${min} ${min === 1 ? 'minute' : 'minutes'}`;",
      "el.textContent = 'Try again';",
      "const id = 'login-form'; fetch(`/api/pharmacy/receipt/${encodeURIComponent(id)}${lang === 'en' ? '?lang=en' : ''}`);",
      "const re = /\\{(\\w+), plural,((?:[^{}]|\\{[^{}]*\\})*)\\}/g; const half = a / 2 / b;",
      "if (!m) throw new Error(`expected a name at ${i}`);",
      "document.querySelectorAll('#upcoming input:checked'); new Intl.DateTimeFormat('da-DK', { hour: '2-digit' });",
    ].join('\n');
    const found = wordsIn(sample, texts).map((l) => l.text.trim());
    expect(found).toEqual(['dosis — apotek', 'Log ud', 'Firmware', 'fejl', 'Forkert medarbejder-id eller PIN-kode.', 'forsøg tilbage.', 'Try again']);
    expect(htmlTexts('<p data-t="x">Log ind</p><input placeholder="Søg"><script type="application/json">{"a":"b c"}</script>')).toEqual(['Log ind', 'Søg']);
  });
});

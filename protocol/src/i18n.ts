// The one message catalogue of everything a person reads: the robot's screens, the alarm centre's dashboard and the
// user-facing CLI messages. Danish first, English as a setting. Messages are ICU MessageFormat strings
// (intl-messageformat), kept per area in protocol/messages/<area>.json as { "da": { key: message }, "en": { … } };
// a key is `<area>.<key>`. Browsers get the same strings (messagesFor) and format them with the same library.

import { readdirSync, readFileSync } from 'node:fs';
import { IntlMessageFormat } from 'intl-messageformat';

export const LANGS = ['da', 'en'] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = 'da';
export const LOCALES: Record<Lang, string> = { da: 'da-DK', en: 'en-GB' };

export type Values = Record<string, string | number | boolean | Date | null | undefined>;

const MESSAGES_DIR = new URL('../messages/', import.meta.url);

export function isLang(s: unknown): s is Lang {
  return typeof s === 'string' && (LANGS as readonly string[]).includes(s);
}

type Catalogue = Record<Lang, Map<string, string>>;
let catalogue: Catalogue | undefined;

/** Reads every area file once; a key missing in one language, or a message that does not parse, is an error here. */
export function loadCatalogue(dir: URL = MESSAGES_DIR): Catalogue {
  const out: Catalogue = { da: new Map(), en: new Map() };
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const area = file.slice(0, -'.json'.length);
    const parsed = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Partial<Record<Lang, Record<string, string>>>;
    for (const lang of LANGS) {
      for (const [key, msg] of Object.entries(parsed[lang] ?? {})) out[lang].set(`${area}.${key}`, msg);
    }
  }
  for (const [a, b] of [['da', 'en'], ['en', 'da']] as const) {
    for (const key of out[a].keys()) if (!out[b].has(key)) throw new Error(`message ${key} has ${a} text but no ${b} text`);
  }
  for (const lang of LANGS) for (const [key, msg] of out[lang]) {
    try {
      new IntlMessageFormat(msg, LOCALES[lang]);
    } catch (err) {
      throw new Error(`message ${key} (${lang}) does not parse: ${(err as Error).message}`);
    }
  }
  return out;
}

function messages(): Catalogue {
  return (catalogue ??= loadCatalogue());
}

const formats = new Map<string, IntlMessageFormat>();

/** The message `key` in `lang`, formatted with `values`; an unknown key is a programming error and throws. */
export function t(lang: Lang, key: string, values?: Values): string {
  const id = `${lang}\u0000${key}`;
  let f = formats.get(id);
  if (!f) {
    const msg = messages()[lang].get(key);
    if (msg === undefined) throw new Error(`no message ${key}`);
    formats.set(id, (f = new IntlMessageFormat(msg, LOCALES[lang])));
  }
  return String(f.format(values as Record<string, never>));
}

/** Whether the catalogue has `key` (reason codes and the like that may be new to it). */
export function hasMessage(key: string): boolean {
  return messages().da.has(key);
}

/** The raw messages of some areas in one language, for a page to format with intl-messageformat itself. */
export function messagesFor(lang: Lang, areas: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, msg] of messages()[lang]) if (areas.some((a) => key.startsWith(`${a}.`))) out[key] = msg;
  return out;
}

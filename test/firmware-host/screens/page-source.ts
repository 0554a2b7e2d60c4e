// Reads the screens' page sources for their tests: the string literals of a page script (a small lexer for the plain
// browser JavaScript the pages are written in: comments, quotes, template literals with nested expressions, regular
// expressions), and the text an HTML page shows before its script runs.

export type Literal = {
  /** The literal's text; for a template literal, one static piece between its ${…} expressions. */
  text: string;
  line: number;
  /** The identifier right before the call the literal is the first argument of, e.g. `Error` in new Error('…'). */
  callee: string | null;
};

const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'case', 'in', 'of', 'delete', 'void', 'throw', 'new', 'instanceof', 'else', 'do']);

/** Every string literal and template piece of a script, in source order. */
export function scriptLiterals(src: string): Literal[] {
  const out: Literal[] = [];
  // Significant tokens seen so far (identifiers, punctuation, 'lit' for a literal), for regex detection and callees.
  const tokens: string[] = [];
  const templateDepths: number[] = [];
  let depth = 0;
  let i = 0;
  const lineAt = (at: number) => src.slice(0, at).split('\n').length;
  const callee = (): string | null => (tokens.at(-1) === '(' && /^[A-Za-z_$][\w$]*$/.test(tokens.at(-2) ?? '') ? tokens.at(-2)! : null);
  const unescape = (s: string) => s.replace(/\\u\{([0-9a-fA-F]+)\}|\\u([0-9a-fA-F]{4})|\\(.)/gs, (_, a, b, c) => (a || b ? String.fromCodePoint(parseInt(a || b, 16)) : c === 'n' ? '\n' : c));

  /** Reads template text from i up to its end or its next ${. */
  const templatePiece = (): void => {
    const start = i;
    let text = '';
    while (i < src.length) {
      const c = src[i]!;
      if (c === '\\') {
        text += src.slice(i, i + 2);
        i += 2;
      } else if (c === '`') {
        out.push({ text: unescape(text), line: lineAt(start), callee: callee() });
        i += 1;
        tokens.push('lit');
        return;
      } else if (c === '$' && src[i + 1] === '{') {
        out.push({ text: unescape(text), line: lineAt(start), callee: callee() });
        i += 2;
        templateDepths.push(depth);
        tokens.push('${');
        return;
      } else {
        text += c;
        i += 1;
      }
    }
    throw new Error(`unterminated template literal at line ${lineAt(start)}`);
  };

  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') i += 1;
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated comment at line ${lineAt(i)}`);
      i = end + 2;
    } else if (c === '"' || c === "'") {
      const start = i;
      i += 1;
      let text = '';
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\n') throw new Error(`unterminated string at line ${lineAt(start)}`);
        text += src[i] === '\\' ? src.slice(i, (i += 2)) : src[i++];
      }
      i += 1;
      out.push({ text: unescape(text), line: lineAt(start), callee: callee() });
      tokens.push('lit');
    } else if (c === '`') {
      i += 1;
      templatePiece();
    } else if (c === '}' && templateDepths.length > 0 && templateDepths.at(-1) === depth) {
      templateDepths.pop();
      i += 1;
      templatePiece();
    } else if (c === '/') {
      const prev = tokens.at(-1) ?? '';
      const regexHere = prev === '' || prev === '${' || REGEX_AFTER_WORDS.has(prev) || /^[(,=:[!&|?{};+\-*%<>~^]$/.test(prev);
      if (!regexHere) {
        tokens.push('/');
        i += 1;
        continue;
      }
      let inClass = false;
      i += 1;
      while (i < src.length) {
        const r = src[i]!;
        if (r === '\\') i += 2;
        else if (r === '[') (inClass = true), (i += 1);
        else if (r === ']') (inClass = false), (i += 1);
        else if (r === '/' && !inClass) break;
        else if (r === '\n') throw new Error(`unterminated regular expression at line ${lineAt(i)}`);
        else i += 1;
      }
      i += 1;
      while (/[a-z]/.test(src[i] ?? '')) i += 1;
      tokens.push('regex');
    } else if (/[A-Za-z_$0-9]/.test(c)) {
      // A number's dot belongs to it; an identifier's dot is a token of its own (so `a.Error(` has callee Error).
      const word = (/^\d/.test(c) ? /^\d[\w.]*/ : /^[A-Za-z_$][\w$]*/).exec(src.slice(i))![0];
      tokens.push(word);
      i += word.length;
    } else {
      if (c === '{') depth += 1;
      if (c === '}') depth -= 1;
      tokens.push(c);
      i += 1;
    }
  }
  if (templateDepths.length > 0) throw new Error('unterminated template expression');
  return out;
}

/** The text an HTML page shows by itself: text between tags and the human-read attributes, scripts and comments left out. */
export function htmlTexts(html: string): string[] {
  const body = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '<script></script>').replace(/<!doctype[^>]*>/i, '');
  const texts = [...body.matchAll(/>([^<]*)</g)].map((m) => m[1]!.trim()).filter((t) => t.length > 0);
  for (const m of body.matchAll(/\s(?:placeholder|title|aria-label|alt|label|value)="([^"]*)"/gi)) if (/\p{L}/u.test(m[1]!)) texts.push(m[1]!);
  return texts;
}

/** Whether a literal reads like words for a person rather than an id, a selector, a path or a format option. */
export function looksLikeWords(text: string, catalogueTexts: ReadonlySet<string>): boolean {
  const t = text.trim();
  if (t === 'use strict') return false;
  // A CSS selector (`#upcoming input:checked`): ASCII, with an id, class, pseudo-class or attribute right on a name.
  if (/^[\w\-#.:[\]="'\s>+~*(),]+$/.test(t) && /[#.:[][A-Za-z]/.test(t)) return false;
  if (/[^\x00-\x7f]/u.test(t) && /\p{L}/u.test(t)) return true; // æ, ø, å, é …
  if (/\p{L}{2,}[\p{P}]*\s+[\p{P}]*\p{L}{2,}/u.test(t)) return true; // two words or more
  if (/^\p{Lu}\p{Ll}+\b/u.test(t)) return true; // a capitalised word
  return t.length >= 3 && catalogueTexts.has(t.toLowerCase());
}

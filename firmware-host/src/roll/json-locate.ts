// Finds where a text stops being JSON, as line and column, because JSON.parse's messages differ between Node versions.
//
// An iterative scanner (an explicit stack, no recursion) so that `[[[[…` two megabytes deep cannot overflow the stack.
// It accepts exactly RFC 8259 JSON, the language JSON.parse accepts.

export type JsonSyntaxError = {
  /** 0-based offset in UTF-16 code units. */
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based, in characters from the start of the line. */
  column: number;
  reason: string;
};

const WS = new Set([' ', '\t', '\n', '\r']);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const HEX = /^[0-9a-fA-F]{4}$/;

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** The character at `i`, quoted; control characters as a \\u escape with four hex digits. */
function shown(text: string, i: number): string {
  const code = text.charCodeAt(i);
  return `"${code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : (text[i] ?? '')}"`;
}

function describe(text: string, i: number): string {
  return i >= text.length ? 'unexpected end of file' : `unexpected character ${shown(text, i)}`;
}

/** The first syntax error in `text`, or undefined if it is one well-formed JSON value. */
export function locateJsonError(text: string): JsonSyntaxError | undefined {
  const n = text.length;
  let i = 0;
  const stack: ('array' | 'object')[] = [];
  const fail = (at: number, reason: string): JsonSyntaxError => ({ offset: at, ...lineColumn(text, at), reason });
  const skipWs = () => {
    while (i < n && WS.has(text[i] as string)) i++;
  };
  // Returns an error reason at `i`, or undefined with `i` just past the string.
  const scanString = (): string | undefined => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return `control character ${shown(text, i)} inside a string`;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!HEX.test(text.slice(i + 2, i + 6))) {
            i += 2;
            return 'bad \\u escape in a string';
          }
          i += 6;
        } else if (e !== undefined && ESCAPES.has(e)) {
          i += 2;
        } else {
          i++;
          return e === undefined ? 'unexpected end of file inside a string' : `bad escape "\\${e}" in a string`;
        }
      } else {
        i++;
      }
    }
    return 'unexpected end of file inside a string';
  };
  const digits = (): number => {
    const start = i;
    while (i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
    return i - start;
  };
  const scanNumber = (): string | undefined => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (digits() === 0) return `${describe(text, i)} in a number`;
    if (text[i] === '.') {
      i++;
      if (digits() === 0) return `${describe(text, i)} in a number`;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (digits() === 0) return `${describe(text, i)} in a number`;
    }
    return undefined;
  };

  // mode: 'value' = a value must come next; 'key' = an object key must come next; 'after' = a value just ended.
  let mode: 'value' | 'key' | 'after' = 'value';
  for (;;) {
    skipWs();
    if (mode === 'key') {
      if (text[i] !== '"') return fail(i, `${describe(text, i)}, expected a property name in double quotes`);
      const bad = scanString();
      if (bad) return fail(i, bad);
      skipWs();
      if (text[i] !== ':') return fail(i, `${describe(text, i)}, expected ":" after a property name`);
      i++;
      mode = 'value';
      continue;
    }
    if (mode === 'value') {
      const c = text[i];
      if (c === '{') {
        i++;
        skipWs();
        if (text[i] === '}') {
          i++;
          mode = 'after';
        } else {
          stack.push('object');
          mode = 'key';
        }
      } else if (c === '[') {
        i++;
        skipWs();
        if (text[i] === ']') {
          i++;
          mode = 'after';
        } else {
          stack.push('array');
          mode = 'value';
        }
      } else if (c === '"') {
        const bad = scanString();
        if (bad) return fail(i, bad);
        mode = 'after';
      } else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
        const bad = scanNumber();
        if (bad) return fail(i, bad);
        mode = 'after';
      } else if (c === 't' || c === 'f' || c === 'n') {
        const word = c === 't' ? 'true' : c === 'f' ? 'false' : 'null';
        for (let k = 0; k < word.length; k++) {
          if (text[i + k] !== word[k]) return fail(i + k, `${describe(text, i + k)}, expected ${word}`);
        }
        i += word.length;
        mode = 'after';
      } else {
        return fail(i, `${describe(text, i)}, expected a value`);
      }
      continue;
    }
    // mode === 'after'
    const top = stack[stack.length - 1];
    if (top === undefined) return i < n ? fail(i, `${describe(text, i)} after the end of the JSON value`) : undefined;
    const c = text[i];
    const close = top === 'array' ? ']' : '}';
    if (c === ',') {
      i++;
      mode = top === 'array' ? 'value' : 'key';
    } else if (c === close) {
      i++;
      stack.pop();
    } else {
      return fail(i, `${describe(text, i)}, expected "," or "${close}"`);
    }
  }
}

export type DuplicateKey = {
  /** JSON Pointer of the repeated member, e.g. `/pouches/0/intakeTime`. */
  path: string;
  /** 1-based line and column of the repeated key's opening quote. */
  line: number;
  column: number;
  /** Line of the earlier member of that name. */
  firstLine: number;
};

const pointerToken = (key: string): string => key.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Every object member whose name repeats an earlier one in the same object, in document order. JSON.parse keeps the
 * last value silently; a manifest must mean one thing, so a repeat is an error. `text` must be well-formed JSON.
 */
export function findDuplicateKeys(text: string, limit = 1000): DuplicateKey[] {
  // A frame knows its parent and its place in it; a path is only built for a repeat, so `[[[[…` deep costs no paths.
  type Frame = { kind: 'object' | 'array'; parent: Frame | undefined; at: string; keys: Map<string, number> | undefined; key: string; index: number };
  const out: DuplicateKey[] = [];
  const n = text.length;
  let top: Frame | undefined;
  let line = 1;
  let lineStart = 0;
  let i = 0;
  let expectKey = false;
  const pathOf = (f: Frame | undefined, last: string): string => {
    const parts = [last];
    for (let p = f; p?.parent !== undefined; p = p.parent) parts.push(p.at);
    return `/${parts.reverse().join('/')}`;
  };
  const placeInTop = (): string => (top === undefined ? '' : top.kind === 'object' ? pointerToken(top.key) : String(top.index));
  const stringEnd = (from: number): number => {
    let k = from + 1;
    while (k < n) {
      const c = text.charCodeAt(k);
      if (c === 0x5c) k += 2;
      else if (c === 0x22) return k + 1;
      else k++;
    }
    return n;
  };
  while (i < n && out.length < limit) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      lineStart = i + 1;
      i++;
    } else if (c === 0x22) {
      const end = stringEnd(i);
      if (expectKey && top?.kind === 'object') {
        const key = JSON.parse(text.slice(i, end)) as string;
        const keys = top.keys as Map<string, number>;
        const first = keys.get(key);
        if (first !== undefined) out.push({ path: pathOf(top, pointerToken(key)), line, column: i - lineStart + 1, firstLine: first });
        else keys.set(key, line);
        top.key = key;
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      const object = c === 0x7b;
      top = { kind: object ? 'object' : 'array', parent: top, at: placeInTop(), keys: object ? new Map() : undefined, key: '', index: 0 };
      expectKey = object;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      top = top?.parent;
      i++;
    } else if (c === 0x2c) {
      if (top?.kind === 'array') top.index++;
      else expectKey = true;
      i++;
    } else {
      i++;
    }
  }
  return out;
}

// The screens' message formatter: the catalogue's ICU MessageFormat strings (protocol/messages/*.json, put in the page
// by the server) formatted the way intl-messageformat formats them on the host — plain {arguments}, {n, plural, …}
// with =N cases and #, {x, select, …}, and ICU's apostrophe quoting — so a page needs no bundled library.
// test/firmware-host/screens/messages.test.ts holds it to intl-messageformat for every message a page uses.
'use strict';

(function (global) {
  const POUND = { pound: true };

  /** Parses one message into a list of parts: strings, { arg }, { arg, plural | select: cases }, and POUND (#). */
  function parse(text) {
    let i = 0;
    function parseParts(inPlural, endOnBrace) {
      const parts = [];
      let buf = '';
      while (i < text.length) {
        const c = text[i];
        if (c === "'") {
          const next = text[i + 1];
          if (next === "'") {
            buf += "'";
            i += 2;
          } else if (next === '{' || next === '}' || next === '|' || (inPlural && next === '#')) {
            // Quoted literal text up to the next single apostrophe ('' inside it is one apostrophe).
            i += 1;
            while (i < text.length) {
              if (text[i] === "'" && text[i + 1] === "'") {
                buf += "'";
                i += 2;
              } else if (text[i] === "'") {
                i += 1;
                break;
              } else {
                buf += text[i];
                i += 1;
              }
            }
          } else {
            buf += c;
            i += 1;
          }
        } else if (c === '{') {
          if (buf) parts.push(buf);
          buf = '';
          i += 1;
          parts.push(parseArgument());
        } else if (c === '}') {
          if (!endOnBrace) throw new Error(`unexpected } at ${i}`);
          break;
        } else if (c === '#' && inPlural) {
          if (buf) parts.push(buf);
          buf = '';
          parts.push(POUND);
          i += 1;
        } else {
          buf += c;
          i += 1;
        }
      }
      if (buf) parts.push(buf);
      return parts;
    }
    function word() {
      while (/\s/.test(text[i] || '')) i += 1;
      const m = /^[^\s,{}]+/.exec(text.slice(i));
      if (!m) throw new Error(`expected a name at ${i}`);
      i += m[0].length;
      while (/\s/.test(text[i] || '')) i += 1;
      return m[0];
    }
    function parseArgument() {
      const arg = word();
      if (text[i] === '}') {
        i += 1;
        return { arg };
      }
      if (text[i] !== ',') throw new Error(`expected , or } at ${i}`);
      i += 1;
      const type = word();
      if (type !== 'plural' && type !== 'select') throw new Error(`unsupported argument type ${type}`);
      if (text[i] !== ',') throw new Error(`expected , at ${i}`);
      i += 1;
      const cases = {};
      for (;;) {
        while (/\s/.test(text[i] || '')) i += 1;
        if (text[i] === '}') {
          i += 1;
          break;
        }
        const key = word();
        if (text[i] !== '{') throw new Error(`expected { at ${i}`);
        i += 1;
        cases[key] = parseParts(type === 'plural', true);
        if (text[i] !== '}') throw new Error(`unterminated case at ${i}`);
        i += 1;
      }
      return type === 'plural' ? { arg, plural: cases } : { arg, select: cases };
    }
    const parts = parseParts(false, false);
    if (i < text.length) throw new Error(`unexpected } at ${i}`);
    return parts;
  }

  function render(parts, values, locale, count) {
    let out = '';
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else if (p === POUND) out += count === undefined ? '#' : new Intl.NumberFormat(locale).format(count);
      else if (p.plural) {
        const n = Number(values[p.arg]);
        const cases = p.plural;
        const pick = cases[`=${n}`] || cases[new Intl.PluralRules(locale).select(n)] || cases.other || [];
        out += render(pick, values, locale, n);
      } else if (p.select) {
        const v = String(values[p.arg]);
        out += render(Object.prototype.hasOwnProperty.call(p.select, v) ? p.select[v] : p.select.other || [], values, locale, count);
      } else {
        const v = values[p.arg];
        out += v === undefined || v === null ? '' : String(v);
      }
    }
    return out;
  }

  /**
   * A formatter over one language's messages: msg(key, values) is the formatted text; has(key) whether it exists.
   * An unknown key comes back as itself (a programming error the pages' tests catch, never a blank screen).
   */
  function formatter(messages, locale) {
    const parsed = new Map();
    function msg(key, values) {
      if (!Object.prototype.hasOwnProperty.call(messages, key)) return key;
      let parts = parsed.get(key);
      if (!parts) {
        try {
          parts = parse(messages[key]);
        } catch (e) {
          parts = [messages[key]];
        }
        parsed.set(key, parts);
      }
      return render(parts, values || {}, locale);
    }
    return { msg, has: (key) => Object.prototype.hasOwnProperty.call(messages, key) };
  }

  /** The catalogue a page carries: `<script id="messages" type="application/json">` with { da: {…}, en: {…} }. */
  function inlined(id) {
    try {
      const data = JSON.parse(document.getElementById(id || 'messages').textContent);
      return data && typeof data === 'object' ? data : {};
    } catch (e) {
      return {};
    }
  }

  global.DosisMessages = { formatter, inlined, parse };
})(typeof window !== 'undefined' ? window : globalThis);

// Framing and catalogue: CRC, every message round-trips, and no input makes a decoder throw.
import { describe, expect, it } from 'vitest';
import * as p from '../../protocol/src/index.js';

const samples: p.Command[] = [
  { name: 'HELLO', v: 1, cat: p.CATALOGUE_HASH },
  { name: 'STATUS' },
  { name: 'ROTATE', id: 'FFFFFFFF', slot: 255, lease: 60_000, dl: 60_000 },
  { name: 'RELEASE', id: '00000000', slot: 0, lease: 100, dl: 60_000 },
  { name: 'SHAKE', id: '0A0B0C0D', slot: 12, lease: 5000, dl: 60_000 },
  { name: 'QUERY', id: '0A0B0C0D' },
  { name: 'SIGNAL', mode: 'error' },
  { name: 'CLEAR' },
  { name: 'FAULT', fault: 'corruptByte', p: 1_000_000 },
  { name: 'SIM', act: 'place' },
];
const events: p.DeviceEvent[] = [
  { name: 'BOOT', boot: 'DEADBEEF', fw: '1.0.0', hw: 'dosis-r1' },
  { name: 'ROTATED', id: '00000001', slot: 3, label: 'R1-004' },
  { name: 'ROTATED', id: '00000001', slot: 3, err: 'LABEL' },
  { name: 'RELEASED', id: '00000002', slot: 3, n: 255, w: Array(p.MAX_WIDTHS).fill(99), empty: 0 },
  { name: 'SHAKEN', id: '00000003', slot: 3, n: 0, w: [], empty: 1 },
  { name: 'CUP', present: 1, lifts: 3 },
  { name: 'BUTTON' },
  { name: 'LATCHED', reason: 'JAM' },
];

describe('CRC-16/MCRF4XX', () => {
  it('gives the check value 6F91 for "123456789" and changes with any one bit', () => {
    expect(p.crc16('123456789')).toBe(0x6f91);
    expect(p.crc16Hex('123456788')).not.toBe('6F91');
    expect(p.crc16Hex('')).toBe('FFFF');
  });
});

describe('decodeFrame', () => {
  it('checks the CRC as four uppercase hex digits and names the one it computed', () => {
    const line = p.encodeFrame({ kind: 'C', seq: 1, body: 'STATUS' }).trimEnd();
    const crc = line.slice(-4);
    expect(p.decodeFrame(line)).toMatchObject({ ok: true, frame: { kind: 'C', seq: 1, body: 'STATUS' } });
    expect(crc).toBe('831C'); // has a letter, so its lowercase differs
    expect(p.decodeFrame(line.slice(0, -4) + crc.toLowerCase())).toMatchObject({ ok: false, reason: 'malformed' });
    const wrong = (parseInt(crc, 16) ^ 1).toString(16).toUpperCase().padStart(4, '0');
    expect(p.decodeFrame(line.slice(0, -4) + wrong)).toEqual({ ok: false, reason: 'bad_crc', detail: `got ${wrong}, computed ${crc}` });
    expect(p.decodeFrame('  \r')).toMatchObject({ ok: false, reason: 'empty' });
  });
});

describe('frame codec', () => {
  // The codec builds and checks frames in one pass with cached heads; the plain definition is the yardstick.
  const plain = (kind: string, seq: number, body: string) => `$${kind},${seq},${body}*${p.crc16Hex(`${kind},${seq},${body}`)}\n`;

  it('encodes every kind and seq as the framing rule says, and decodes each back', () => {
    for (const kind of ['C', 'A', 'N', 'E', 'H'] as const) {
      for (let seq = 0; seq < p.SEQ_MODULO; seq++) {
        const body = seq % 3 === 0 ? '' : `HB,boot=0000${seq.toString(16).toUpperCase().padStart(4, '0')},st=idle,cup=${seq & 1}`;
        const line = p.encodeFrame({ kind, seq, body });
        expect(line).toBe(plain(kind, seq, body));
        expect(p.decodeFrame(line)).toEqual({ ok: true, frame: { kind, seq, body }, noise: 0 });
      }
    }
  });

  it('rejects in the order of the rules: a non-ASCII byte anywhere, then the shape, the CRC, the kind, the seq', () => {
    const ok = plain('E', 7, 'CUP,present=1').trimEnd();
    expect(p.decodeFrame(`${ok.slice(0, -1)}\u00e9`)).toMatchObject({ ok: false, reason: 'non_ascii', detail: `byte 0xe9 at ${ok.length - 1}` });
    expect(p.decodeFrame(`x\u0001$${ok.slice(1)}`)).toMatchObject({ ok: true, noise: 2 });
    expect(p.decodeFrame(`$E,1\u00ff,*$${ok.slice(1)}`)).toMatchObject({ ok: true, frame: { kind: 'E', seq: 7 }, noise: 7 });
    expect(p.decodeFrame(`$E,7,a*b*${p.crc16Hex('E,7,a*b')}`)).toMatchObject({ ok: true, frame: { body: 'a*b' } });
    expect(p.decodeFrame('$E,7*1234')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(p.decodeFrame(plain('E', 7, '').trimEnd().replace('E,7,', 'E;7;'))).toMatchObject({ ok: false, reason: 'bad_crc' });
    const reframe = (inner: string) => `$${inner}*${p.crc16Hex(inner)}`;
    expect(p.decodeFrame(reframe('E7,x'))).toMatchObject({ ok: false, reason: 'malformed', detail: 'expected K,seq,body' });
    expect(p.decodeFrame(reframe('EE,7,x'))).toMatchObject({ ok: false, reason: 'bad_kind', detail: 'kind "EE"' });
    expect(p.decodeFrame(reframe('X,7,x'))).toMatchObject({ ok: false, reason: 'bad_kind' });
    for (const seq of ['', '07', '256', '1000', '-1', '1a']) {
      expect(p.decodeFrame(reframe(`E,${seq},x`))).toMatchObject({ ok: false, reason: 'bad_seq', detail: `seq ${JSON.stringify(seq)}` });
    }
    expect(p.decodeFrame(reframe('E,255,a,b'))).toMatchObject({ ok: true, frame: { kind: 'E', seq: 255, body: 'a,b' } });
  });
});

describe('frame decoder against the framing rule read literally', () => {
  // The rule of DESIGN.md, written for clarity rather than speed: the decoder must agree with it on every line.
  const literal = (raw: string): p.DecodeResult => {
    const no = (reason: p.FrameRejection, detail: string): p.DecodeResult => ({ ok: false, reason, detail });
    let line = raw;
    if (line.endsWith('\n')) line = line.slice(0, -1);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length + 1 > p.MAX_FRAME_BYTES) return no('too_long', `${line.length + 1} bytes`);
    const start = line.lastIndexOf('$');
    if (start < 0) return line.trim() === '' ? no('empty', 'blank line') : no('no_sync', 'no $ in line');
    const bad = /[^\x20-\x7e]/.exec(line.slice(start));
    if (bad) return no('non_ascii', `byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')} at ${start + bad.index}`);
    const star = line.lastIndexOf('*');
    if (star < start + 5 || line.length - star - 1 !== 4) return no('malformed', 'expected $K,seq,body*CRC');
    const crc = line.slice(star + 1);
    if (!/^[0-9A-F]{4}$/.test(crc)) return no('malformed', `CRC ${JSON.stringify(crc)} is not 4 uppercase hex digits`);
    const inner = line.slice(start + 1, star);
    if (p.crc16Hex(inner) !== crc) return no('bad_crc', `got ${crc}, computed ${p.crc16Hex(inner)}`);
    const [kind, seq, ...rest] = inner.split(',');
    if (rest.length === 0) return no('malformed', 'expected K,seq,body');
    if (!['C', 'A', 'N', 'E', 'H'].includes(kind!)) return no('bad_kind', `kind ${JSON.stringify(kind)}`);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(seq!) || Number(seq) > 255) return no('bad_seq', `seq ${JSON.stringify(seq)}`);
    return { ok: true, frame: { kind: kind as p.FrameKind, seq: Number(seq), body: rest.join(',') }, noise: start };
  };

  it('agrees on 30,000 lines: valid frames, frames with bytes changed, dropped or added, and noise', () => {
    let x = 2024;
    const rand = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const alphabet = ['$', '*', ',', 'C', 'A', 'N', 'E', 'H', '0', '1', '2', '5', '9', 'F', 'a', ' ', '=', '\r', '\n', '\u0001', '\u00e9', '\u007f'];
    const valid = () => {
      const kind = 'CANEH'[rand(5)]!;
      const seq = rand(300);
      const body = ['HB,boot=1A2B3C4D,st=idle,cup=1', 'OK', 'STATUS', '', 'RELEASED,id=00000002,slot=3,n=4,w=1.2.3.4,empty=0'][rand(5)]!;
      const inner = `${kind},${seq},${body}`;
      return `$${inner}*${p.crc16Hex(inner)}${rand(4) === 0 ? '\r\n' : '\n'}`;
    };
    let agreedOk = 0;
    for (let i = 0; i < 30_000; i++) {
      let line = valid();
      for (let k = rand(4); k > 0; k--) {
        const at = rand(line.length + 1);
        const op = rand(3);
        const ch = alphabet[rand(alphabet.length)]!;
        line = op === 0 ? line.slice(0, at) + ch + line.slice(at) : op === 1 ? line.slice(0, at) + line.slice(at + 1) : line.slice(0, at) + ch + line.slice(at + 1);
      }
      if (rand(10) === 0) line = 'x'.repeat(rand(140)) + line;
      const want = literal(line);
      expect(p.decodeFrame(line), JSON.stringify(line)).toEqual(want);
      if (want.ok) agreedOk++;
    }
    expect(agreedOk).toBeGreaterThan(5000);
  });
});

describe('catalogue round trip', () => {
  it('covers every command and event in the catalogue', () => {
    expect(new Set(samples.map((c) => c.name))).toEqual(new Set(Object.keys(p.COMMANDS)));
    expect(new Set(events.map((e) => e.name))).toEqual(new Set(Object.keys(p.EVENTS)));
  });

  it.each(samples.map((c) => [c.name, c] as const))('command %s survives encode → frame → decode', (_n, cmd) => {
    const line = p.encodeFrame({ kind: 'C', seq: 200, body: p.encodeCommand(cmd) });
    expect(line.length).toBeLessThanOrEqual(p.MAX_FRAME_BYTES);
    const d = p.decodeFrame(line);
    expect(d.ok && p.decodeCommand(d.frame.body)).toEqual({ ok: true, value: cmd });
  });

  it.each(events.map((e, i) => [`${e.name} #${i}`, e] as const))('event %s survives encode → frame → decode', (_n, ev) => {
    const line = p.encodeFrame({ kind: 'E', seq: 255, body: p.encodeEvent(ev) });
    expect(line.length).toBeLessThanOrEqual(p.MAX_FRAME_BYTES);
    const d = p.decodeFrame(line);
    expect(d.ok && p.decodeEvent(d.frame.body)).toEqual({ ok: true, value: ev });
  });

  it('keeps the longest answer, a QUERY of a full release, within 128 bytes', () => {
    const body = p.encodeAck('QUERY', { result: 'OK', fields: { id: 'FFFFFFFF', st: 'done', ev: 'RELEASED', slot: 255, n: 255, w: Array(p.MAX_WIDTHS).fill(99), empty: 1 } });
    expect(p.encodeFrame({ kind: 'A', seq: 255, body }).length).toBeLessThanOrEqual(p.MAX_FRAME_BYTES);
  });

  it('refuses to encode a frame no peer could accept', () => {
    expect(() => p.encodeFrame({ kind: 'C', seq: 256, body: 'STATUS' })).toThrow(p.FrameEncodeError);
    expect(() => p.encodeFrame({ kind: 'C', seq: 1, body: 'A*B' })).toThrow(/character/);
    expect(() => p.encodeFrame({ kind: 'C', seq: 1, body: 'X'.repeat(200) })).toThrow(/over 128/);
  });
});

describe('decoders never throw', () => {
  it('on 20,000 random lines, mutations of valid frames included', () => {
    let s = 12345;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const valid = samples.map((c) => p.encodeFrame({ kind: 'C', seq: 1, body: p.encodeCommand(c) }));
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let line: string;
      if (i % 2 === 0) {
        line = Array.from({ length: Math.floor(rnd() * 140) }, () => String.fromCharCode(Math.floor(rnd() * 256))).join('');
      } else {
        const base = valid[i % valid.length]!;
        const at = Math.floor(rnd() * base.length);
        line = base.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + base.slice(at + 1);
      }
      const d = p.decodeFrame(line);
      if (d.ok) {
        accepted++;
        expect(() => p.decodeCommand(d.frame.body)).not.toThrow();
        expect(() => p.decodeEvent(d.frame.body)).not.toThrow();
        expect(() => p.decodeAck('QUERY', d.frame.body)).not.toThrow();
        expect(() => p.decodeHeartbeat('mcu', d.frame.body)).not.toThrow();
      } else expect(typeof d.reason).toBe('string');
    }
    // Only mutations that leave the frame intact (such as replacing a char by itself) may pass the CRC.
    expect(accepted).toBeLessThan(200);
  });
});

describe('protocol/README.md', () => {
  it('documents every command, event and ack error', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../protocol/README.md', import.meta.url), 'utf8');
    for (const name of [...Object.keys(p.COMMANDS), ...Object.keys(p.EVENTS)]) expect(readme).toContain(`| \`${name}\` |`);
    for (const code of p.ACK_ERRORS) expect(readme).toContain(`| \`${code}\` |`);
    expect(readme).toContain(p.crc16Hex('123456789'));
  });
});

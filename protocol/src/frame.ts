// Serial framing: `$<K>,<seq>,<body>*<CRC>\n`, one ASCII line of at most 128 bytes (newline included).

import { CRC16_INIT, crc16, crc16Next, hex4, parseHex4 } from './crc16.js';

export const MAX_FRAME_BYTES = 128;
export const SEQ_MODULO = 256;

/** C command (host → MCU), A ack, N nak, E event (MCU → host), H heartbeat. */
export type FrameKind = 'C' | 'A' | 'N' | 'E' | 'H';
const KINDS: ReadonlySet<string> = new Set(['C', 'A', 'N', 'E', 'H']);

export type Frame = { kind: FrameKind; seq: number; body: string };

/** Why a line was not a frame. Stable codes: they appear in naks, logs and test vectors. */
export type FrameRejection =
  | 'empty' // nothing but line ending / whitespace
  | 'no_sync' // no `$` in the line
  | 'too_long' // longer than MAX_FRAME_BYTES
  | 'non_ascii' // a byte outside printable ASCII 0x20–0x7E
  | 'malformed' // not `$K,seq,body*CRC`
  | 'bad_kind' // K is not one of C A N E H
  | 'bad_seq' // seq is not a decimal 0–255 without leading zeros
  | 'bad_crc'; // CRC does not match

export type DecodeResult =
  | { ok: true; frame: Frame; noise: number }
  | { ok: false; reason: FrameRejection; detail: string };

/** Body characters a field may carry: printable ASCII without the frame's own delimiters. */
const isBodyChar = (c: number) => c >= 0x20 && c <= 0x7e && c !== 0x24 /* $ */ && c !== 0x2a; /* * */

export class FrameEncodeError extends Error {
  readonly code = 'DOSIS_ERR_FRAME_ENCODE';
}

/** `$K,seq,` and the CRC so far, per kind and seq: every frame starts with one of these 5 × 256. */
const heads = new Map<string, { text: string; crc: number }[]>();

function frameHead(kind: FrameKind, seq: number): { text: string; crc: number } {
  let bySeq = heads.get(kind);
  if (!bySeq) heads.set(kind, (bySeq = []));
  let head = bySeq[seq];
  if (!head) {
    const inner = `${kind},${seq},`;
    head = bySeq[seq] = { text: `$${inner}`, crc: crc16(inner) };
  }
  return head;
}

/** Encodes a frame as one line, newline included. Throws FrameEncodeError on a frame no peer could accept. */
export function encodeFrame(frame: Frame): string {
  const { kind, seq, body } = frame;
  if (!KINDS.has(kind)) throw new FrameEncodeError(`unknown frame kind ${JSON.stringify(kind)}`);
  if (!Number.isInteger(seq) || seq < 0 || seq >= SEQ_MODULO) throw new FrameEncodeError(`seq ${seq} is outside 0–255`);
  const head = frameHead(kind, seq);
  let crc = head.crc;
  // The body is checked on the pass that adds it to the CRC.
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (!isBodyChar(c)) throw new FrameEncodeError(`body has a character a frame cannot carry: ${JSON.stringify(body)}`);
    crc = crc16Next(crc, c);
  }
  const line = `${head.text}${body}*${hex4(crc)}\n`;
  if (line.length > MAX_FRAME_BYTES) throw new FrameEncodeError(`frame is ${line.length} bytes, over ${MAX_FRAME_BYTES}`);
  return line;
}

/**
 * Decodes one received line (with or without its line ending; read as latin1 so
 * each byte is one char). Noise before the last `$` is skipped and counted: the
 * receiver resynchronises on `$`. Never throws.
 */
export function decodeFrame(raw: string): DecodeResult {
  let end = raw.length;
  if (end > 0 && raw.charCodeAt(end - 1) === 0x0a) end--;
  if (end > 0 && raw.charCodeAt(end - 1) === 0x0d) end--;
  if (end + 1 > MAX_FRAME_BYTES) return reject('too_long', `${end + 1} bytes`);
  const line = end === raw.length ? raw : raw.slice(0, end);
  // One forward pass. A `$` starts the frame over (what came before it is noise: the receiver resynchronises on the
  // last one); on the way it notes the first byte outside printable ASCII, the first two commas, and the last `*`
  // with the CRC of what lies between `$` and it.
  let start = line.indexOf('$');
  if (start < 0) return line.trim() === '' ? reject('empty', 'blank line') : reject('no_sync', 'no $ in line');
  let crc = CRC16_INIT;
  let star = -1;
  let crcToStar = 0;
  let c1 = -1;
  let c2 = -1;
  let bad = -1;
  for (let i = start + 1; i < end; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x24 /* $ */) {
      start = i;
      crc = CRC16_INIT;
      star = c1 = c2 = bad = -1;
      continue;
    }
    if ((c < 0x20 || c > 0x7e) && bad < 0) bad = i;
    if (c === 0x2a /* * */) {
      star = i;
      crcToStar = crc;
    } else if (c === 0x2c /* , */ && c2 < 0) {
      if (c1 < 0) c1 = i;
      else c2 = i;
    }
    crc = crc16Next(crc, c);
  }
  if (bad >= 0) return reject('non_ascii', `byte 0x${line.charCodeAt(bad).toString(16).padStart(2, '0')} at ${bad}`);
  if (star < start + 5 || end - star - 1 !== 4) return reject('malformed', 'expected $K,seq,body*CRC');
  const got = parseHex4(line, star + 1);
  if (got < 0) return reject('malformed', `CRC ${JSON.stringify(line.slice(star + 1))} is not 4 uppercase hex digits`);
  if (crcToStar !== got) return reject('bad_crc', `got ${line.slice(star + 1)}, computed ${hex4(crcToStar)}`);
  if (c1 < 0 || c2 < 0) return reject('malformed', 'expected K,seq,body');
  const kind = line.slice(start + 1, c1);
  if (!KINDS.has(kind)) return reject('bad_kind', `kind ${JSON.stringify(kind)}`);
  const seq = parseSeq(line, c1 + 1, c2);
  if (seq < 0) return reject('bad_seq', `seq ${JSON.stringify(line.slice(c1 + 1, c2))}`);
  return { ok: true, frame: { kind: kind as FrameKind, seq, body: line.slice(c2 + 1, star) }, noise: start };
}

/** A seq as frames write it (decimal 0–255, no leading zeros) from `text[from, to)`, or -1. */
function parseSeq(text: string, from: number, to: number): number {
  const n = to - from;
  if (n < 1 || n > 3 || (n > 1 && text.charCodeAt(from) === 0x30)) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v < SEQ_MODULO ? v : -1;
}

function reject(reason: FrameRejection, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

export function nextSeq(seq: number): number {
  return (seq + 1) % SEQ_MODULO;
}

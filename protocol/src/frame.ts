// Serial framing: `$<K>,<seq>,<body>*<CRC>\n`, one ASCII line of at most 128 bytes (newline included).

import { crc16, crc16Hex, parseHex4 } from './crc16.js';

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
const FORBIDDEN_IN_BODY = /[^\x20-\x7e]|[$*]/;

export class FrameEncodeError extends Error {
  readonly code = 'DOSIS_ERR_FRAME_ENCODE';
}

/** Encodes a frame as one line, newline included. Throws FrameEncodeError on a frame no peer could accept. */
export function encodeFrame(frame: Frame): string {
  if (!KINDS.has(frame.kind)) throw new FrameEncodeError(`unknown frame kind ${JSON.stringify(frame.kind)}`);
  if (!Number.isInteger(frame.seq) || frame.seq < 0 || frame.seq >= SEQ_MODULO) {
    throw new FrameEncodeError(`seq ${frame.seq} is outside 0–255`);
  }
  if (FORBIDDEN_IN_BODY.test(frame.body)) throw new FrameEncodeError(`body has a character a frame cannot carry: ${JSON.stringify(frame.body)}`);
  const inner = `${frame.kind},${frame.seq},${frame.body}`;
  const line = `$${inner}*${crc16Hex(inner)}\n`;
  if (line.length > MAX_FRAME_BYTES) throw new FrameEncodeError(`frame is ${line.length} bytes, over ${MAX_FRAME_BYTES}`);
  return line;
}

const SEQ_RE = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Decodes one received line (with or without its line ending; read as latin1 so
 * each byte is one char). Noise before the last `$` is skipped and counted: the
 * receiver resynchronises on `$`. Never throws.
 */
export function decodeFrame(raw: string): DecodeResult {
  let line = raw;
  if (line.endsWith('\n')) line = line.slice(0, -1);
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (line.length + 1 > MAX_FRAME_BYTES) return reject('too_long', `${line.length + 1} bytes`);
  const start = line.lastIndexOf('$');
  if (start < 0) return line.trim() === '' ? reject('empty', 'blank line') : reject('no_sync', 'no $ in line');
  for (let i = start; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return reject('non_ascii', `byte 0x${c.toString(16).padStart(2, '0')} at ${i}`);
  }
  const star = line.lastIndexOf('*');
  if (star < start + 5 || line.length - star - 1 !== 4) return reject('malformed', 'expected $K,seq,body*CRC');
  const got = parseHex4(line, star + 1);
  if (got < 0) return reject('malformed', `CRC ${JSON.stringify(line.slice(star + 1))} is not 4 uppercase hex digits`);
  if (crc16(line, start + 1, star) !== got) return reject('bad_crc', `got ${line.slice(star + 1)}, computed ${crc16Hex(line, start + 1, star)}`);
  const inner = line.slice(start + 1, star);
  const c1 = inner.indexOf(',');
  const c2 = c1 < 0 ? -1 : inner.indexOf(',', c1 + 1);
  if (c1 < 0 || c2 < 0) return reject('malformed', 'expected K,seq,body');
  const kind = inner.slice(0, c1);
  if (!KINDS.has(kind)) return reject('bad_kind', `kind ${JSON.stringify(kind)}`);
  const seqText = inner.slice(c1 + 1, c2);
  if (!SEQ_RE.test(seqText) || Number(seqText) >= SEQ_MODULO) return reject('bad_seq', `seq ${JSON.stringify(seqText)}`);
  return { ok: true, frame: { kind: kind as FrameKind, seq: Number(seqText), body: inner.slice(c2 + 1) }, noise: start };
}

function reject(reason: FrameRejection, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

export function nextSeq(seq: number): number {
  return (seq + 1) % SEQ_MODULO;
}

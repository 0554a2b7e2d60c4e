// CRC-16/MCRF4XX: poly 0x1021 reflected (0x8408), init 0xFFFF, no final xor. Check value "123456789" → 0x6F91.

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x8408 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export const CRC16_INIT = 0xffff;

/** The CRC after one more byte: for a caller that checks each byte on the same pass. */
export function crc16Next(crc: number, byte: number): number {
  return (crc >>> 8) ^ TABLE[(crc ^ byte) & 0xff]!;
}

/** CRC over the char codes of an ASCII (or latin1) string, from `start` to `end` (exclusive). */
export function crc16(text: string, start = 0, end = text.length): number {
  let crc = CRC16_INIT;
  for (let i = start; i < end; i++) crc = crc16Next(crc, text.charCodeAt(i));
  return crc;
}

/** Every byte as two uppercase hex digits. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

/** A 16-bit value as a frame carries its CRC: four uppercase hex digits. */
export function hex4(c: number): string {
  return HEX2[(c >>> 8) & 0xff]! + HEX2[c & 0xff]!;
}

/** The CRC of `text` (or part of it) as four uppercase hex digits. */
export function crc16Hex(text: string, start = 0, end = text.length): string {
  return hex4(crc16(text, start, end));
}

/** The value of four uppercase hex digits of `text` from `at`, or -1 when they are not that (lowercase is refused: frames carry uppercase). */
export function parseHex4(text: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = text.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

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

/** CRC over the char codes of an ASCII (or latin1) string, from `start` to `end` (exclusive). */
export function crc16(text: string, start = 0, end = text.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ text.charCodeAt(i)) & 0xff]!;
  return crc;
}

/** The CRC as a frame carries it: four uppercase hex digits. */
export function crc16Hex(text: string, start = 0, end = text.length): string {
  return crc16(text, start, end).toString(16).toUpperCase().padStart(4, '0');
}

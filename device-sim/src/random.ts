// The simulator's one source of chance: a seeded sfc32 generator, so the same seed and inputs give the same run.

/** splitmix32 spreads a small seed over the four sfc32 words, so seeds 1 and 2 do not start alike. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Random {
  /** sfc32's four words (a typed array: they stay unboxed 32-bit integers, and stores wrap modulo 2³²). */
  readonly #s = new Uint32Array(4);

  constructor(seed: number) {
    const mix = splitmix32(seed);
    for (let i = 0; i < 4; i++) this.#s[i] = mix();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const s = this.#s;
    const a = s[0]!;
    const b = s[1]!;
    const c = s[2]!;
    const d = s[3]!;
    const t = (((a + b) >>> 0) + d) >>> 0;
    s[3] = d + 1;
    s[0] = b ^ (b >>> 9);
    s[1] = c + (c << 3);
    s[2] = ((c << 21) | (c >>> 11)) + t;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Whole number in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform in [min, max]. */
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /** True with probability p; p = 0 never draws, so a fault-free run spends no randomness on faults. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  /** Normal distribution (Box–Muller). */
  normal(mean: number, sd: number): number {
    if (sd <= 0) return mean;
    const u = 1 - this.next();
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Eight uppercase hex digits, e.g. a boot id. */
  hex8(): string {
    return this.uint32().toString(16).toUpperCase().padStart(8, '0');
  }
}

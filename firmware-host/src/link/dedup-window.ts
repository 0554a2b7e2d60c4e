// Remembers the MCU's recent event frames so that a retransmission is acked again but handed up only once.
//
// The MCU's seq counter is shared by its events and heartbeats and wraps at 256,
// so a seq alone cannot tell a retransmission from a new event many frames later.
// A frame counts as a duplicate when the same seq came with the same body within
// `maxAgeMs`: retransmissions repeat both within seconds, while the counter needs
// 256 frames (over four minutes of heartbeats) to come round to the same seq.

export class DedupWindow {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly size = 64,
    private readonly maxAgeMs = 120_000,
  ) {}

  /** True when this frame was seen recently; otherwise records it and returns false. */
  seen(seq: number, body: string, nowMs: number): boolean {
    const key = `${seq}|${body}`;
    const at = this.#seen.get(key);
    if (at !== undefined && nowMs - at <= this.maxAgeMs) return true;
    this.#seen.delete(key);
    this.#seen.set(key, nowMs);
    while (this.#seen.size > this.size) this.#seen.delete(this.#seen.keys().next().value!);
    return false;
  }

  clear(): void {
    this.#seen.clear();
  }
}

// A Clock that remembers the timers set through it, so the demo can cancel every one of them when it closes.
//
// Parts such as the screen backend's minute tick have no close of their own;
// on the system clock a forgotten timer would keep the process alive after `quit`.
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';

export class TrackingClock implements Clock {
  readonly #inner: Clock;
  readonly #pending = new Set<TimerHandle>();
  #closed = false;

  constructor(inner: Clock) {
    this.#inner = inner;
  }

  now(): number {
    return this.#inner.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    if (this.#closed) return this.#inner.setTimeout(() => undefined, 0);
    const h: TimerHandle = this.#inner.setTimeout(() => {
      this.#pending.delete(h);
      fn();
    }, delayMs);
    this.#pending.add(h);
    return h;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.#pending.delete(handle);
    this.#inner.clearTimeout(handle);
  }

  /** Cancels every pending timer; later timers never fire. */
  close(): void {
    this.#closed = true;
    for (const h of this.#pending) this.#inner.clearTimeout(h);
    this.#pending.clear();
  }
}

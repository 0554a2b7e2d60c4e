// The one source of time for every part of dosis: a system clock for real runs, a manual one for tests and soaks.
//
// Nothing in dosis calls Date.now(), setTimeout or setInterval directly. Every
// component takes a Clock; XState actors get the same object as their `clock`
// option (it has the setTimeout/clearTimeout pair XState asks for).

export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the Unix epoch (wall clock for SystemClock, virtual for ManualClock). */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** The wall clock: the only place in dosis that reads real time or arms real timers. */
export class SystemClock implements Clock {
  #next = 1;
  readonly #timers = new Map<number, ReturnType<typeof globalThis.setTimeout>>();

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.#next++;
    const t = globalThis.setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, Math.max(0, delayMs));
    this.#timers.set(id, t);
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const t = this.#timers.get(handle.id);
    if (t !== undefined) {
      globalThis.clearTimeout(t);
      this.#timers.delete(handle.id);
    }
  }

  /** Timers still armed; a clean shutdown leaves none. */
  get pending(): number {
    return this.#timers.size;
  }
}

type ManualTimer = { id: number; atMs: number; order: number; fn: () => void };

/**
 * A virtual clock that moves only when told to. Timers fire in time order
 * (ties in the order they were set), so a run is reproducible to the event.
 * The soak runner jumps from timer to timer with `runNext()`.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #next = 1;
  #order = 0;
  // A binary heap keyed on (atMs, order); cancelled timers are dropped lazily.
  readonly #heap: ManualTimer[] = [];
  readonly #live = new Set<number>();

  constructor(startMs = Date.UTC(2026, 0, 5, 7, 0, 0)) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.#next++;
    const timer: ManualTimer = { id, atMs: this.#nowMs + Math.max(0, delayMs), order: this.#order++, fn };
    this.#push(timer);
    this.#live.add(id);
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.#live.delete(handle.id);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#live.size;
  }

  /** When the next armed timer fires, or undefined when none is armed. */
  nextAtMs(): number | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.atMs;
  }

  /** Jumps to the next timer and fires it (and every other timer due at that instant). Returns false when none is armed. */
  runNext(): boolean {
    const at = this.nextAtMs();
    if (at === undefined) return false;
    this.advanceTo(at);
    return true;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    this.advanceTo(this.#nowMs + ms);
  }

  advanceTo(targetMs: number): void {
    for (;;) {
      this.#dropCancelled();
      const top = this.#heap[0];
      if (!top || top.atMs > targetMs) break;
      this.#pop();
      this.#live.delete(top.id);
      if (top.atMs > this.#nowMs) this.#nowMs = top.atMs;
      top.fn();
    }
    if (targetMs > this.#nowMs) this.#nowMs = targetMs;
  }

  /**
   * Runs timers until `done()` holds or `limitMs` of virtual time has passed.
   * Returns whether `done()` held.
   */
  runUntil(done: () => boolean, limitMs = 24 * 3600_000): boolean {
    const end = this.#nowMs + limitMs;
    while (!done()) {
      const at = this.nextAtMs();
      if (at === undefined || at > end) {
        this.advanceTo(end);
        return done();
      }
      this.advanceTo(at);
    }
    return true;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && !this.#live.has(this.#heap[0]!.id)) this.#pop();
  }

  #less(a: ManualTimer, b: ManualTimer): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
  }

  #push(t: ManualTimer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): ManualTimer | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Virtual time that runs `speed` times faster than the wall clock: a ManualClock
 * advanced by a real timer. The demo's `--speed N` runs the whole system on one
 * of these, so every part, hardware timings included, speeds up together.
 */
export class PacedClock implements Clock {
  readonly #virtual: ManualClock;
  readonly #wall = new SystemClock();
  #handle: TimerHandle | undefined;
  #lastWallMs: number;

  constructor(
    readonly speed: number,
    startMs = Date.now(),
    private readonly tickMs = 10,
  ) {
    this.#virtual = new ManualClock(startMs);
    this.#lastWallMs = this.#wall.now();
  }

  now(): number {
    return this.#virtual.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.#virtual.setTimeout(fn, delayMs);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#virtual.clearTimeout(handle);
  }

  start(): void {
    if (this.#handle) return;
    this.#lastWallMs = this.#wall.now();
    const tick = () => {
      const wallNow = this.#wall.now();
      this.#virtual.advance((wallNow - this.#lastWallMs) * this.speed);
      this.#lastWallMs = wallNow;
      this.#handle = this.#wall.setTimeout(tick, this.tickMs);
    };
    this.#handle = this.#wall.setTimeout(tick, this.tickMs);
  }

  stop(): void {
    this.#wall.clearTimeout(this.#handle);
    this.#handle = undefined;
  }
}

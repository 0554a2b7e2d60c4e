// The one source of time for every part of dosis: a system clock for real runs, a manual one for tests and soaks.
//
// Nothing in dosis calls Date.now(), setTimeout or setInterval directly. Every
// component takes a Clock; XState actors get the same object as their `clock`
// option (it has the setTimeout/clearTimeout pair XState asks for).

export type TimerHandle = { readonly id: number };

/**
 * A periodic timer that, while its owner is idle, only arms its next tick (or overwrites what its last tick wrote):
 * the timer, when it fires next and its period. What an owner offers a virtual-time driver that skips idle rounds
 * (the soak's coalesced mode, device-sim/src/soak/coast.ts).
 */
export type IdleTicks = { timer: TimerHandle; atMs: number; everyMs: number };

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

/** A manual clock's timer is its own handle: clearing it marks it dead, and the heap drops it when it comes to the top. */
class ManualTimer implements TimerHandle {
  live = true;
  constructor(
    readonly id: number,
    readonly atMs: number,
    readonly fn: () => void,
    readonly clock: ManualClock,
  ) {}
}

/**
 * A virtual clock that moves only when told to. Timers fire in time order
 * (ties in the order they were set), so a run is reproducible to the event.
 * The soak runner jumps from timer to timer with `runNext()`.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #next = 1;
  // A binary heap keyed on (atMs, id): ids grow, so ties keep the order timers were set in. Cancelled timers are dropped lazily.
  readonly #heap: ManualTimer[] = [];
  #live = 0;

  constructor(startMs = Date.UTC(2026, 0, 5, 7, 0, 0)) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.#next++;
    const timer = new ManualTimer(id, this.#nowMs + Math.max(0, delayMs), fn, this);
    this.#push(timer);
    this.#live++;
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!(handle instanceof ManualTimer) || handle.clock !== this || !handle.live) return;
    handle.live = false;
    this.#live--;
    // Cleared timers wait in the heap until their time comes; when they outnumber the armed ones, the heap is rebuilt without them.
    if (this.#heap.length > 2 * this.#live + COMPACT_MIN) this.#compact();
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#live;
  }

  /** When the next armed timer fires, or undefined when none is armed. */
  nextAtMs(): number | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.atMs;
  }

  /** When the next armed timer other than those in `skip` fires (a walk down the heap that stops at the first such one on each path). */
  nextAtMsExcept(skip: readonly TimerHandle[]): number | undefined {
    const h = this.#heap;
    let best = Infinity;
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const t = h[i];
      if (!t || t.atMs >= best) continue;
      if (t.live && !skip.includes(t)) best = t.atMs;
      else stack.push(2 * i + 1, 2 * i + 2);
    }
    return best === Infinity ? undefined : best;
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
      top.live = false;
      this.#live--;
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

  #compact(): void {
    const h = this.#heap;
    let n = 0;
    for (const t of h) if (t.live) h[n++] = t;
    h.length = n;
    // Bottom-up heapify: sift each parent down, last parent first.
    for (let i = (n >> 1) - 1; i >= 0; i--) this.#siftDown(h[i]!, i);
  }

  #dropCancelled(): void {
    const h = this.#heap;
    while (h.length > 0 && !h[0]!.live) this.#pop();
  }

  #push(t: ManualTimer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!less(t, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = t;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    this.#siftDown(last, 0);
  }

  /** Places `t` at slot `i` or below, moving smaller children up. */
  #siftDown(t: ManualTimer, i: number): void {
    const h = this.#heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && less(h[r]!, h[l]!) ? r : l;
      if (!less(h[m]!, t)) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = t;
  }
}

/** Cleared timers the heap may hold beyond twice the armed ones before it is rebuilt. */
const COMPACT_MIN = 64;

function less(a: ManualTimer, b: ManualTimer): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.id < b.id);
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

// The injected clocks: order of timers, cancellation, jumps, and pacing against the wall clock.
import { describe, expect, it } from 'vitest';
import { ManualClock, PacedClock, SystemClock } from '../../protocol/src/clock.js';

describe('ManualClock', () => {
  it('fires timers in time order, ties in the order they were set, and only when time reaches them', () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('c@30'), 30);
    clock.setTimeout(() => fired.push('a@10'), 10);
    clock.setTimeout(() => fired.push('b@10'), 10);
    clock.advance(9);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['a@10', 'b@10']);
    expect(clock.now()).toBe(1010);
    clock.advance(100);
    expect(fired).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.now()).toBe(1110);
  });

  it('shows the time of each timer to the timer itself and runs timers set while advancing', () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => {
      seen.push(clock.now());
      clock.setTimeout(() => seen.push(clock.now()), 5);
    }, 10);
    clock.advance(20);
    expect(seen).toEqual([10, 15]);
  });

  it('never fires a cleared timer', () => {
    const clock = new ManualClock(0);
    let fired = 0;
    const h = clock.setTimeout(() => fired++, 10);
    clock.setTimeout(() => fired++, 20);
    clock.clearTimeout(h);
    expect(clock.pending).toBe(1);
    clock.advance(100);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('counts a timer once however often it is cleared, and ignores handles of another clock or timers already fired', () => {
    const clock = new ManualClock(0);
    const other = new ManualClock(0);
    let fired = 0;
    const a = clock.setTimeout(() => fired++, 10);
    const b = clock.setTimeout(() => fired++, 20);
    const foreign = other.setTimeout(() => fired++, 5);
    clock.clearTimeout(foreign);
    clock.clearTimeout(a);
    clock.clearTimeout(a);
    expect(clock.pending).toBe(1);
    expect(other.pending).toBe(1);
    clock.advance(30);
    clock.clearTimeout(b);
    expect([fired, clock.pending]).toEqual([1, 0]);
    other.advance(5);
    expect(fired).toBe(2);
  });

  it('keeps time order through thousands of timers, most of them cleared (the heap drops cleared ones as it goes)', () => {
    const clock = new ManualClock(0);
    let x = 12345;
    const rand = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
    type T = { n: number; at: number; handle: ReturnType<ManualClock['setTimeout']>; cleared: boolean };
    const timers: T[] = [];
    const fired: T[] = [];
    const arm = (depth: number) => {
      const delay = rand(3) === 0 ? rand(7_200_000) : rand(2000);
      const t: T = { n: timers.length, at: clock.now() + delay, cleared: false, handle: undefined as never };
      t.handle = clock.setTimeout(() => {
        fired.push(t);
        // A firing timer sets new ones and clears others, as the link and the dose machine do.
        if (depth < 3) for (let k = rand(3); k > 0; k--) arm(depth + 1);
        for (let k = rand(4); k > 0; k--) clearOne();
      }, delay);
      timers.push(t);
    };
    // Mostly a timer set a moment ago (a retransmit timer the ack made moot, a window timer the button press ended).
    const clearOne = () => {
      const t = timers[Math.max(0, timers.length - 1 - rand(20))]!;
      if (!fired.includes(t)) t.cleared = true;
      clock.clearTimeout(t.handle);
    };
    for (let i = 0; i < 3000; i++) {
      arm(0);
      if (rand(10) < 9) clearOne();
      if (rand(50) === 0) clock.advance(rand(600_000));
    }
    expect(clock.pending).toBe(timers.filter((t) => !t.cleared && !fired.includes(t)).length);
    clock.advance(10 * 7_200_000);
    expect(clock.pending).toBe(0);
    expect(fired.filter((t) => t.cleared)).toEqual([]);
    expect(fired.length).toBe(timers.filter((t) => !t.cleared).length);
    for (let i = 1; i < fired.length; i++) {
      const a = fired[i - 1]!;
      const b = fired[i]!;
      expect(a.at < b.at || (a.at === b.at && a.n < b.n), `timer ${b.n} fired after ${a.n}`).toBe(true);
    }
    expect(timers.filter((t) => t.cleared).length).toBeGreaterThan(1000);
  });

  it('jumps from timer to timer with runNext and stops runUntil when done or out of time', () => {
    const clock = new ManualClock(0);
    let n = 0;
    const tick = () => {
      n++;
      clock.setTimeout(tick, 1000);
    };
    clock.setTimeout(tick, 1000);
    expect(clock.nextAtMs()).toBe(1000);
    expect(clock.runNext()).toBe(true);
    expect([n, clock.now()]).toEqual([1, 1000]);
    expect(clock.runUntil(() => n >= 5)).toBe(true);
    expect(clock.now()).toBe(5000);
    expect(clock.runUntil(() => n >= 100, 2500)).toBe(false);
    expect(clock.now()).toBe(7500);
    expect(new ManualClock(0).runNext()).toBe(false);
  });
});

describe('PacedClock', () => {
  it('runs virtual time the given number of times faster than the wall clock', async () => {
    const clock = new PacedClock(100, 0, 5);
    let firedAt: number | undefined;
    clock.setTimeout(() => (firedAt = clock.now()), 2000);
    clock.start();
    await new Promise((r) => setTimeout(r, 80));
    clock.stop();
    expect(firedAt).toBe(2000);
    expect(clock.now()).toBeGreaterThanOrEqual(5000);
    expect(clock.now()).toBeLessThan(60_000);
  });
});

describe('SystemClock', () => {
  it('arms and clears real timers and leaves none behind', async () => {
    const clock = new SystemClock();
    let fired = false;
    const h = clock.setTimeout(() => (fired = true), 1);
    clock.clearTimeout(clock.setTimeout(() => (fired = true), 1));
    expect(clock.pending).toBe(2 - 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toBe(true);
    expect(clock.pending).toBe(0);
    clock.clearTimeout(h);
  });
});

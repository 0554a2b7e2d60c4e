// The fleet bench in small: a few hundred robots, a storm with a day's outbox each; every event sent is stored once.
import { describe, expect, it } from 'vitest';
import { benchFleet } from './fleet-bench.js';

describe('fleet bench', () => {
  it('drains a small fleet and its reconnect storm with nothing lost or doubled, and stops by itself', async () => {
    const f = await benchFleet({ robots: 300, compress: 600, outboxHours: 24, sockets: 20, deadlineS: 60 });
    expect(f.steady.unfinished + f.storm.unfinished).toBe(0);
    expect(f.eventsSent).toBeGreaterThan(20);
    expect(f.storm.events + f.steady.events).toBe(f.eventsSent);
    expect(f.stored).toBe(f.eventsSent);
    expect(f.lost).toBe(0);
    expect(f.doubled).toBe(0);
    expect(f.heartbeatsSeen).toBe(300);
  }, 90_000);
});

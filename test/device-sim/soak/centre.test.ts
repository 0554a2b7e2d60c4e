// The soak's alarm centre: a request that hangs is counted as given up the moment the robot gives up on it.
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { Random } from '../../../device-sim/src/random.js';
import { NO_NETWORK_FAULTS, SoakCentre } from '../../../device-sim/src/soak/centre.js';

let centre: SoakCentre | undefined;
afterEach(async () => {
  await centre?.close();
  centre = undefined;
});

describe('soak centre', () => {
  it('counts a hanging request given up by its timeout at once, so a synchronous run of virtual time sees it', async () => {
    const clock = new ManualClock(Date.UTC(2027, 0, 4, 6, 0));
    centre = await SoakCentre.open(clock, new Random(1), { ...NO_NETWORK_FAULTS, timeoutRate: 1 });
    // Two requests hang (the robot's delivery pass and its heartbeat), each with the robot's own 10 s timeout.
    const settled: string[] = [];
    for (const path of ['/v1/devices/x/events/batch', '/v1/devices/x/heartbeat']) {
      const ac = new AbortController();
      clock.setTimeout(() => ac.abort(), 10_000);
      centre.fetch(`http://alarm-centre.soak${path}`, { method: 'POST', body: '{}', signal: ac.signal }).then(
        () => settled.push('answered'),
        (e: Error) => settled.push(e.name),
      );
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(centre.hung).toBe(2);
    // The soak's delivery wait runs virtual time synchronously until something it can see changes.
    expect(clock.runUntil(() => centre!.hung < 2, 3600_000)).toBe(true);
    expect(clock.now()).toBeLessThanOrEqual(Date.UTC(2027, 0, 4, 6, 0) + 10_000);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(settled).toEqual(['AbortError', 'AbortError']);
    expect(centre.hung).toBe(0);
    expect(centre.inflight).toBe(0);
  });

  it('drops the requests a dead process left hanging', async () => {
    const clock = new ManualClock(Date.UTC(2027, 0, 4, 6, 0));
    centre = await SoakCentre.open(clock, new Random(2), { ...NO_NETWORK_FAULTS, timeoutRate: 1 });
    const p = centre.fetch('http://alarm-centre.soak/v1/devices/x/heartbeat', { method: 'POST', body: '{}' });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(centre.hung).toBe(1);
    centre.dropHung();
    expect(centre.hung).toBe(0);
    await expect(p).rejects.toThrow('aborted');
    expect(centre.inflight).toBe(0);
  });
});

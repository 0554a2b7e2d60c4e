// A cup lifted and put back within the MCU's debounce: one CUP event, the cup present and the lift count gone up. The
// count is the news (protocol/README.md, cup lifts), so the presented dose ends taken. A host that read only
// "present=0" events left such a dose waiting in the cup until its window closed, as missed.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { SimHarness } from '../../device-sim/src/harness/sim-harness.js';
import { MIN, QUICK_TIMING } from './scenarios/kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
let open: SimHarness | undefined;
afterEach(async () => {
  await open?.stop();
  open = undefined;
});

describe('a cup lifted and put back within the debounce', () => {
  it('ends the presented dose taken', () => {
    const clock = new ManualClock(T0);
    const h = (open = new SimHarness({ seed: 7, clock, timing: QUICK_TIMING, logger: pino({ level: 'silent' }) }).start());
    expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
    const [pouch] = h.loadRoll([{ intakeAtMs: T0 + 2 * MIN, pills: 3 }]);
    expect(h.runUntil(() => clock.now() >= T0 + 2 * MIN, 5 * MIN)).toBe(true);
    h.sim.pressButton();
    expect(h.runUntil(() => h.controller.status().phase === 'presented', MIN)).toBe(true);
    expect(h.profile.cupDebounceMs).toBeGreaterThan(10);
    h.sim.takeCup();
    clock.advance(10);
    h.sim.placeCup();
    expect(h.runUntil(() => h.outcomes.length > 0, 10_000)).toBe(true);
    expect(h.outcomes[0]).toMatchObject({ doseId: pouch!.label, final: 'taken', cls: 'correct' });
  });
});

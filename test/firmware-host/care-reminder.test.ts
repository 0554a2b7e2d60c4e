// A dose the robot is reminding of that the staff take out of dispensing (released for travel, withdrawn): the
// reminder stops at once; a dose still due is reminded of as before.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { SimHarness } from '../../device-sim/src/harness/sim-harness.js';
import { MIN, QUICK_TIMING, scenarioRoll } from './scenarios/kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A robot with a roll of three doses, run until it reminds of the first. */
function reminding(): SimHarness {
  const clock = new ManualClock(T0);
  const h = new SimHarness({ seed: 5, clock, timing: QUICK_TIMING, logger: pino({ level: 'silent' }) }).start();
  cleanups.push(() => h.stop());
  expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
  const pouches = scenarioRoll('R1', clock.now(), [2, 3, 4]);
  h.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
  h.controller.loadSchedule({ rollId: 'R1', citizenId: 'C1', pouches });
  expect(h.runUntil(() => h.sim.status().signal === 'remind', 10 * MIN)).toBe(true);
  expect(h.controller.status().current?.doseId).toBe('R1-001');
  return h;
}

describe('care actions and the reminder', () => {
  it('stops reminding of a dose withdrawn while it is due', () => {
    const h = reminding();
    h.store.withdraw({ doseIds: ['R1-001'] }, 'staff-1');
    h.controller.scheduleChanged();
    expect(h.runUntil(() => h.sim.status().signal === 'off', 10_000)).toBe(true);
    expect(h.controller.status().current?.doseId).toBe('R1-002');
  });

  it('stops reminding of a dose released for travel while it is due', () => {
    const h = reminding();
    h.store.releaseForTravel(1, 'staff-1');
    h.controller.scheduleChanged();
    expect(h.runUntil(() => h.sim.status().signal === 'off', 10_000)).toBe(true);
  });

  it('keeps reminding of the due dose when a later one is withdrawn', () => {
    const h = reminding();
    h.store.withdraw({ doseIds: ['R1-003'] }, 'staff-1');
    h.controller.scheduleChanged();
    h.runUntil(() => false, 10_000);
    expect(h.sim.status().signal).toBe('remind');
    expect(h.controller.status().current?.doseId).toBe('R1-001');
  });
});

// The world's simulated citizen (device-sim/src/world/citizen.ts): the lifts a plan asks for, with the light left on.
import { describe, expect, it } from 'vitest';
import { Host } from '../harness.js';
import { Citizen, type CitizenPlan } from '../../../device-sim/src/world/citizen.js';
import type { DoseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';

/** A light that says "take the cup" and stays on (no host turns it off), and a citizen with `plan` for a dose open now. */
function lightLeftOn(plan: Partial<CitizenPlan>): { h: Host; citizen: Citizen } {
  const h = new Host();
  expect(h.ack(h.cmd('SIGNAL,mode=present'))).toBe('OK');
  const now = h.clock.now();
  const w: DoseWindows = { earlyAtMs: now - 60_000, dueAtMs: now, overdueAtMs: now + 120_000, closeAtMs: now + 300_000 };
  const citizen = new Citizen({ clock: h.clock, sim: h.sim, notice: () => null, lookEveryMs: 100 });
  citizen.expect(w, { forget: false, pressAtMs: [now], liftDelayMs: 400, placeBackMs: 100, ...plan });
  return { h, citizen };
}

describe('the world citizen and a light left on', () => {
  it('lifts the cup once per dose by default, however long the light stays on', () => {
    const { h, citizen } = lightLeftOn({});
    h.run(10_000);
    expect(citizen.lifts).toBe(1);
    expect(h.sim.ledger.takes.map((t) => t.by)).toEqual(['citizen']);
    expect(h.sim.cupPresent).toBe(true);
  });

  it('with liftAgainAfterMs, lifts again while the light still asks, and stops as the dose ends', () => {
    const { h, citizen } = lightLeftOn({ liftAgainAfterMs: 200 });
    h.run(2000);
    // One lift 400 ms after the light was seen, then one each time the cup has been back 200 ms (placed 100 ms after).
    expect(citizen.lifts).toBeGreaterThanOrEqual(5);
    expect(citizen.lifts).toBeLessThanOrEqual(7);
    citizen.end();
    const lifts = citizen.lifts;
    h.run(5000);
    expect(citizen.lifts).toBe(lifts);
    expect(h.sim.cupPresent).toBe(true);
  });
});

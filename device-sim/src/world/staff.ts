// The care staff at the robot between doses: they empty a cup a dose left pills in, or bring back one carried away.
//
// What the staff lift out of the cup is recorded in the ledger as theirs
// (`by: 'staff'`), so the referee never counts it as the citizen taking the
// dose. The soak calls this as each dose ends; the scenario tests do the same
// (test/firmware-host/scenarios/kit.ts).

import type { DeviceSimulator } from '../simulator.js';

/**
 * The staff look at the cup: with pills in it they lift it out (and empty it), and with none in place they go for it.
 * True when the cup is now in their hands: the caller puts it back (`sim.placeCup()`) when they are done.
 */
export function staffTakeCup(sim: DeviceSimulator): boolean {
  if (sim.status().pillsInCup === 0 && sim.cupPresent) return false;
  sim.takeCup('staff');
  return true;
}

// The roll now loaded as the validator's continuity check needs it: its span and its pouches not yet dispensed.

import type { Store } from '../store/store.js';
import type { LoadedRoll } from './validate.js';

export function loadedRollOf(store: Store, nowMs: number): LoadedRoll | undefined {
  const active = store.activeRoll();
  if (!active) return undefined;
  const doses = store.allDoses().filter((d) => d.rollId === active.rollId);
  if (doses.length === 0) return undefined;
  // Doses in a pause, cut for travel or withdrawn are not waiting to be dispensed: they are not pending. Nor is a
  // dose whose window has closed while no controller ran (a roll loaded on the database alone): it is missed already.
  const pending = doses
    .filter((d) => d.state === 'dispensing' || d.state === 'presented' || (d.state === 'scheduled' && d.intakeAtMs + d.timing.closeAfterMin * 60_000 > nowMs))
    .map((d) => ({ label: d.label, intakeAtMs: d.intakeAtMs }));
  return { rollId: active.rollId, firstIntakeAtMs: doses[0]!.intakeAtMs, lastIntakeAtMs: doses[doses.length - 1]!.intakeAtMs, pending };
}

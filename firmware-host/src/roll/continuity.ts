// The roll now loaded as the validator's continuity check needs it: its span and its pouches not yet dispensed.

import type { Store } from '../store/store.js';
import type { LoadedRoll } from './validate.js';

export function loadedRollOf(store: Store): LoadedRoll | undefined {
  const active = store.activeRoll();
  if (!active) return undefined;
  const doses = store.allDoses().filter((d) => d.rollId === active.rollId);
  if (doses.length === 0) return undefined;
  // Doses in a pause, cut for travel or withdrawn are not waiting to be dispensed: they are not pending.
  const pending = doses.filter((d) => d.state === 'scheduled' || d.state === 'dispensing' || d.state === 'presented').map((d) => ({ label: d.label, intakeAtMs: d.intakeAtMs }));
  return { rollId: active.rollId, firstIntakeAtMs: doses[0]!.intakeAtMs, lastIntakeAtMs: doses[doses.length - 1]!.intakeAtMs, pending };
}

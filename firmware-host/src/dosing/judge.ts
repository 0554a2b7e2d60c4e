// The verdict on a release: are the right pills in the cup, should the pouch be shaken again, or is the dose yellow?
//
// Pure: the dispensing machine feeds it every sensor reading of the dosing so
// far (the release and any shakes) and the pouch-empty flag of the last one.
// The rules, most certain first:
//   more pills than expected                  → yellow overcount (cannot be taken back)
//   expected count, pouch empty               → right pills
//   expected count, pouch not empty           → yellow pouch_not_empty (count and pouch disagree)
//   short, pouch not empty, shakes left       → shake the pouch again
//   short, pouch not empty, no shakes left    → yellow undercount_after_retry
//   short, pouch empty, every missing pill explained by a pulse too long for one pill (see ambiguousFromMs)
//                                             → right pills (two pills passed the gate together)
//   short, pouch empty, otherwise             → yellow sensor_implausible (the pills left, the count does not say so)
// What a count-only sensor cannot see: a pouch packed with one pill more whose extra pill left no pulse of its own (a
// missed pulse, or two pills passing as one pulse no longer than a single pill's) counts right. Calling every such long
// pulse unsure would turn some 0.05 % of all good doses yellow; only a second sensor (weight, camera) can close this.

import type { HardwareProfile } from '../../../hardware/src/profile.js';
import { countPills } from './pill-count.js';

export type Reading = { n: number; w: readonly number[]; empty: boolean };

export type YellowReason = 'overcount' | 'pouch_not_empty' | 'undercount_after_retry' | 'sensor_implausible';

export type Verdict =
  | { kind: 'right'; pills: number; overlapResolved: boolean }
  | { kind: 'shake'; pills: number }
  | { kind: 'yellow'; reason: YellowReason; pills: number };

export const MAX_SHAKES = 2;

/**
 * How long a pulse must be before it may hide two pills: 3.5 standard deviations above a single pill's width. A lower bar
 * hides packing errors: at 2.5 sd (widths of 16 ms and more on the r1, about 1 single pill in 100) a pouch the pharmacy
 * packed one pill short was called right whenever one of its pills happened to pass slowly, some 5 % of such pouches;
 * at 3.5 sd a single pill's pulse reaches it about once in 8,000 pills. Two pills that really overlapped and passed
 * as a shorter pulse end yellow (sensor_implausible): when the count cannot tell, the robot does not guess.
 */
export function ambiguousFromMs(profile: HardwareProfile): number {
  return profile.pillPulseMs.nominal + 3.5 * profile.pillPulseMs.sd;
}

export function judge(profile: HardwareProfile, expected: number, readings: readonly Reading[], shakesDone: number): Verdict {
  let pills = 0;
  let unchecked = 0;
  let ambiguous = 0;
  const from = ambiguousFromMs(profile);
  for (const r of readings) {
    const c = countPills(profile, r.n, r.w);
    pills += c.pills;
    unchecked += c.unchecked;
    for (const w of r.w) if (w > from && w <= profile.pillPulseMs.max) ambiguous++;
  }
  const last = readings[readings.length - 1];
  const empty = last?.empty ?? false;
  if (pills > expected) return { kind: 'yellow', reason: 'overcount', pills };
  if (pills === expected) return empty ? { kind: 'right', pills, overlapResolved: false } : { kind: 'yellow', reason: 'pouch_not_empty', pills };
  if (!empty) return shakesDone < MAX_SHAKES ? { kind: 'shake', pills } : { kind: 'yellow', reason: 'undercount_after_retry', pills };
  const missing = expected - pills;
  if (unchecked === 0 && missing <= ambiguous) return { kind: 'right', pills: expected, overlapResolved: true };
  return { kind: 'yellow', reason: 'sensor_implausible', pills };
}

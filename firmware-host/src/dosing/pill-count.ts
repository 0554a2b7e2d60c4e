// Pills from pill-sensor pulses: the width of a pulse says whether it was noise, one pill, or pills passing together.

import type { HardwareProfile } from '../../../hardware/src/profile.js';

export type PillCount = {
  pills: number;
  /** Pulses shorter than a pill can be: not counted. */
  noise: number;
  /** Pulses longer than one pill: counted as round(width / nominal) pills. */
  overlaps: number;
  /** Pulses beyond the widths the MCU listed: counted as one pill each, unchecked. */
  unchecked: number;
  /** True when the count rests on a guess (overlaps, noise or unchecked pulses): a dose must not be called correct on it alone. */
  uncertain: boolean;
};

/** Counts pills from `n` pulses, the first of which have the listed widths (ms). */
export function countPills(profile: HardwareProfile, n: number, widths: readonly number[]): PillCount {
  const { min, max, nominal } = profile.pillPulseMs;
  let pills = 0;
  let noise = 0;
  let overlaps = 0;
  for (const w of widths) {
    if (w < min) noise++;
    else if (w <= max) pills++;
    else {
      overlaps++;
      pills += Math.max(2, Math.round(w / nominal));
    }
  }
  const unchecked = Math.max(0, n - widths.length);
  pills += unchecked;
  return { pills, noise, overlaps, unchecked, uncertain: noise + overlaps + unchecked > 0 };
}

// The light-gate pill sensor under the pouch: one pulse per falling pill, merged when pills pass too close together.

import { MAX_WIDTHS } from '../../protocol/src/catalogue.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import type { Random } from './random.js';

export type SensorReading = { n: number; w: number[] };

type Pulse = { start: number; end: number };

const clampWidth = (ms: number) => Math.min(99, Math.max(1, Math.round(ms)));

/**
 * What the sensor counts for `pills` falling, their fall starting `startMs`
 * after the counting window opened. overlap and missedPulse are drawn per pill,
 * ghostPulse once per call.
 */
export function sensePills(
  pills: number,
  startMs: number,
  rng: Random,
  profile: HardwareProfile,
  rates: { overlap: number; missedPulse: number; ghostPulse: number },
  /** Told of each fault that fires (the simulator counts them). */
  fired: (name: 'overlap' | 'missedPulse' | 'ghostPulse') => void = () => undefined,
): SensorReading {
  const times: number[] = [];
  for (let i = 0; i < pills; i++) times.push(startMs + rng.between(profile.pillFallMs.min, profile.pillFallMs.max));
  times.sort((a, b) => a - b);
  // The pouch outlet singulates: pills leave one by one, far enough apart that the gate sees each alone.
  // Pills passing together are the overlap fault's doing, not the outlet's.
  const spacingMs = profile.pillPulseMs.nominal + 4 * profile.pillPulseMs.sd + profile.minPulseGapMs;
  for (let i = 1; i < times.length; i++) times[i] = Math.max(times[i]!, times[i - 1]! + spacingMs);
  // An overlapping pill drags the next one right behind it, so the two shade the gate as one long pulse.
  for (let i = 0; i + 1 < times.length; i++) {
    if (rng.chance(rates.overlap)) {
      times[i + 1] = times[i]! + rng.between(0.4, 0.9) * profile.pillPulseMs.nominal;
      fired('overlap');
    }
  }
  const pulses: Pulse[] = [];
  for (const t of times) {
    if (rng.chance(rates.missedPulse)) {
      fired('missedPulse');
      continue;
    }
    const w = clampWidth(rng.normal(profile.pillPulseMs.nominal, profile.pillPulseMs.sd));
    pulses.push({ start: t, end: t + w });
  }
  if (rng.chance(rates.ghostPulse)) {
    fired('ghostPulse');
    const t = startMs + rng.between(0, profile.pillFallMs.max);
    pulses.push({ start: t, end: t + 1 + rng.int(4) });
  }
  pulses.sort((a, b) => a.start - b.start);
  const merged: Pulse[] = [];
  for (const p of pulses) {
    const last = merged[merged.length - 1];
    if (last && p.start < last.end + profile.minPulseGapMs) last.end = Math.max(last.end, p.end);
    else merged.push({ ...p });
  }
  return { n: Math.min(255, merged.length), w: merged.slice(0, MAX_WIDTHS).map((p) => clampWidth(p.end - p.start)) };
}

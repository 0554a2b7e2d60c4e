// Accuracy statistics for soak reports: Wilson intervals and a two-proportion test between two builds.

/** 95 % two-sided normal quantile. */
export const Z95 = 1.959963984540054;

export type Interval = { low: number; high: number };

/** Wilson score interval for `successes` out of `n` (the reference robot's figures are reported this way). */
export function wilson(successes: number, n: number, z = Z95): Interval {
  if (n <= 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At the edges the formula's bound is 0 or 1 up to rounding: say so exactly.
  return { low: successes <= 0 ? 0 : Math.max(0, centre - half), high: successes >= n ? 1 : Math.min(1, centre + half) };
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; error < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return x >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

export type ProportionTest = {
  rateA: number;
  rateB: number;
  /** B − A. */
  difference: number;
  z: number;
  /** Two-sided p-value. */
  pValue: number;
  /** True when the difference is beyond chance at the 5 % level. */
  significant: boolean;
};

/** Pooled two-proportion z-test of `xA/nA` against `xB/nB`. */
export function twoProportionTest(xA: number, nA: number, xB: number, nB: number): ProportionTest {
  const rateA = nA > 0 ? xA / nA : 0;
  const rateB = nB > 0 ? xB / nB : 0;
  const pooled = nA + nB > 0 ? (xA + xB) / (nA + nB) : 0;
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / Math.max(nA, 1) + 1 / Math.max(nB, 1)));
  const z = se > 0 ? (rateB - rateA) / se : 0;
  const pValue = se > 0 ? 2 * (1 - normalCdf(Math.abs(z))) : 1;
  return { rateA, rateB, difference: rateB - rateA, z, pValue, significant: pValue < 0.05 };
}

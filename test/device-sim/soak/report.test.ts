// Soak report maths: Wilson intervals, merging of episode tallies, comparison of builds, profiles, HTML.
import { describe, expect, it } from 'vitest';
import { wilson, twoProportionTest } from '../../../device-sim/src/soak/stats.js';
import { buildReport, compareReports, emptyTally, mergeTallies, reportFigures, type SoakTally } from '../../../device-sim/src/soak/report.js';
import { renderHtml } from '../../../device-sim/src/soak/html.js';
import { loadSoakProfile, meanPills, parseSoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { episodeSeed, planEpisodes } from '../../../device-sim/src/soak/runner.js';

function tally(first: number, correct: number, green: number, yellow: number, red: number): SoakTally {
  const t = emptyTally(first);
  const n = correct + green + yellow + red;
  t.dosings = n;
  t.pills = n * 4;
  t.outcomes = { correct, green, yellow, red };
  if (yellow) t.yellowReasons = { undercount_after_retry: yellow };
  t.samples = [[n, correct, green, yellow, red]];
  return t;
}

const run = { seed: 1, profile: 'reference', transport: 'memory' as const, workers: 1, wallSeconds: 2, interrupted: false };

describe('statistics', () => {
  it('gives the textbook Wilson interval for 8 of 10', () => {
    const ci = wilson(8, 10);
    expect(ci.low).toBeCloseTo(0.4902, 4);
    expect(ci.high).toBeCloseTo(0.9433, 4);
  });

  it('keeps the Wilson interval inside [0, 1] at the edges', () => {
    expect(wilson(0, 50).low).toBe(0);
    expect(wilson(50, 50).high).toBe(1);
    expect(wilson(50, 50).low).toBeGreaterThan(0.9);
  });

  it('finds a real difference and no difference where there is none', () => {
    expect(twoProportionTest(100, 10_000, 30, 10_000).significant).toBe(true);
    expect(twoProportionTest(10, 10_000, 11, 10_000).significant).toBe(false);
  });
});

describe('report', () => {
  it('computes accuracy the reference way and merges episodes in dosing order', () => {
    const merged = mergeTallies([tally(1000, 995, 3, 2, 0), tally(0, 998, 1, 1, 0)]);
    expect(merged.dosings).toBe(2000);
    expect(merged.outcomes).toEqual({ correct: 1993, green: 4, yellow: 3, red: 0 });
    expect(merged.samples.map((s) => s[0])).toEqual([1000, 2000]);
    expect(merged.samples[0]).toEqual([1000, 998, 1, 1, 0]);
    const r = buildReport(merged, run);
    expect(r.accuracy).toBeCloseTo(1 - 7 / 2000, 10);
    expect(r.accuracyCi95.low).toBeLessThan(r.accuracy);
    expect(r.accuracyCi95.high).toBeGreaterThan(r.accuracy);
    expect(r.reasons.yellow).toEqual({ undercount_after_retry: 3 });
    expect(r.series.at(-1)?.dosings).toBe(2000);
  });

  it('gives the same figures whatever the split', () => {
    const parts = [tally(0, 999, 1, 0, 0), tally(1000, 997, 2, 1, 0), tally(2000, 1000, 0, 0, 0)];
    const a = buildReport(mergeTallies(parts), run);
    const b = buildReport(mergeTallies([mergeTallies(parts.slice(0, 1)), mergeTallies(parts.slice(1))]), { ...run, workers: 2, wallSeconds: 1 });
    expect(reportFigures(b)).toEqual(reportFigures(a));
  });

  it('says beats-reference only when the whole interval is above 99.88 %', () => {
    expect(buildReport(tally(0, 200_000, 10, 10, 0), run).verdict).toBe('beats-reference');
    expect(buildReport(tally(0, 1000, 1, 0, 0), run).verdict).toBe('not-distinguishable');
    expect(buildReport(tally(0, 99_000, 500, 500, 0), run).verdict).toBe('below-reference');
  });

  it('compares two builds', () => {
    const a = buildReport(tally(0, 99_000, 500, 500, 0), run);
    const b = buildReport(tally(0, 99_900, 50, 50, 0), run);
    const c = compareReports(a, b);
    expect(c.errors.significant).toBe(true);
    expect(c.summary).toMatch(/B is less accurate|B is more accurate/);
    expect(c.summary).toContain('more accurate');
    expect(compareReports(a, a).errors.significant).toBe(false);
  });

  it('renders a self-contained page with the verdict, the reference and the reasons', () => {
    const html = renderHtml(buildReport(tally(0, 200_000, 10, 10, 0), run));
    expect(html).toContain('beats the reference');
    expect(html).toContain('99.88 %');
    expect(html).toContain('undercount_after_retry');
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('counts doses out of dispensing on their own line, only in runs that had them', () => {
    const withCare = (t: SoakTally, suspended: number, travel: number, withdrawn: number): SoakTally => ({
      ...t, care: { doses: { suspended, travel, withdrawn }, actions: { pause: 1, resumeEarly: 0, travel: 1, withdrawFromTime: 0, withdrawByLabel: 1 } },
    });
    const merged = mergeTallies([withCare(tally(0, 1000, 0, 0, 0), 3, 2, 1), tally(1000, 1000, 0, 0, 0), withCare(tally(2000, 1000, 0, 0, 0), 1, 0, 4)]);
    expect(merged.care?.doses).toEqual({ suspended: 4, travel: 2, withdrawn: 5 });
    expect(merged.care?.actions.travel).toBe(2);
    expect(merged.dosings).toBe(3000);
    const r = buildReport(merged, run);
    expect(r.care?.doses).toEqual({ suspended: 4, travel: 2, withdrawn: 5 });
    expect(renderHtml(r)).toMatch(/suspended 4 · travel 2 · withdrawn 5/);
    // A run without care actions: no care field, no care line, no care class in a comparison.
    const plain = buildReport(tally(0, 1000, 0, 0, 0), run);
    expect('care' in plain).toBe(false);
    expect(renderHtml(plain)).not.toContain('out of dispensing');
    expect(compareReports(plain, plain).classes.map((c) => c.name)).not.toContain('suspended');
    expect(compareReports(plain, r).classes.find((c) => c.name === 'withdrawn')).toMatchObject({ a: 0, b: 5 });
  });
});

describe('soak profiles', () => {
  it('ships none, reference, harsh and care; reference averages about 4.4 pills a dose', () => {
    for (const name of ['none', 'reference', 'harsh', 'care']) expect(loadSoakProfile(name).name).toBe(name);
    expect(loadSoakProfile('reference').care).toBeUndefined();
    expect(loadSoakProfile('care').care?.pauseRate).toBeGreaterThan(0);
    expect(meanPills(loadSoakProfile('reference'))).toBeGreaterThan(4.3);
    expect(meanPills(loadSoakProfile('reference'))).toBeLessThan(4.5);
  });

  it('refuses an unknown field and an impossible value with the reason', () => {
    const good = loadSoakProfile('reference');
    expect(() => parseSoakProfile({ ...good, extra: 1 }, 'x.json')).toThrow(/x\.json/);
    expect(() => parseSoakProfile({ ...good, faults: { jam: 1.5 } }, 'x.json')).toThrow(/faults\/jam/);
    expect(() => parseSoakProfile({ ...good, faults: { wobble: 0.1 } }, 'x.json')).toThrow(/x\.json/);
    expect(() => parseSoakProfile({ ...good, citizen: { ...good.citizen, takeCupDelaySec: { min: 9, max: 3 } } }, 'x.json')).toThrow(/min 9 is above max 3/);
    const care = loadSoakProfile('care');
    expect(() => parseSoakProfile({ ...care, care: { ...care.care, pauseRate: 0.6, travelRate: 0.6 } }, 'x.json')).toThrow(/add up to more than 1/);
    expect(() => parseSoakProfile({ ...care, care: { ...care.care, travelDoses: { min: 0, max: 2 } } }, 'x.json')).toThrow(/care\/travelDoses: whole doses/);
    expect(() => parseSoakProfile({ ...care, care: { ...care.care, nap: 0.1 } }, 'x.json')).toThrow(/x\.json/);
  });
});

describe('episodes', () => {
  it('cuts a run into episodes with distinct, reproducible seeds', () => {
    const eps = planEpisodes(7, 2500, 1000);
    expect(eps.map((e) => [e.firstDosing, e.dosings])).toEqual([[0, 1000], [1000, 1000], [2000, 500]]);
    expect(new Set(eps.map((e) => e.seed)).size).toBe(3);
    expect(planEpisodes(7, 2500, 1000)).toEqual(eps);
    expect(episodeSeed(8, 0)).not.toBe(episodeSeed(7, 0));
  });
});

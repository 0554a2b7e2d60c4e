// Soak report: the figures QA reads (JSON), merging of partial runs, and the comparison of two builds.

import { twoProportionTest, wilson, type Interval, type ProportionTest } from './stats.js';
import { allTransitions } from './coverage.js';
import { FAULT_NAMES } from '../faults.js';
import { AIM_EVENTS } from '../world/aim.js';

/** The reference robot: a Danish municipality's fleet, 2018–2021. */
export const REFERENCE = { accuracy: 0.9988, dosings: 138_000, pills: 606_000 } as const;

export type DoseClassCounts = { correct: number; green: number; yellow: number; red: number };

export type InvariantViolation = { invariant: number; dosing: number; detail: string; episode?: number };

/** What the world did to the robot in the run (the profile's rates made real). */
export type WorldCounts = {
  hostCrashes: number;
  powerCuts: number;
  packingErrors: Record<string, number>;
  network: Record<string, number>;
  /** How often each named simulator fault fired (device-sim/src/faults.ts). */
  faults?: Record<string, number>;
  /** The citizen's cup carried away, and the rare events aimed at the moments that matter (device-sim/src/world/aim.ts). */
  events?: Record<string, number>;
};

/**
 * Doses the staff took out of dispensing (pause, travel, withdrawal), by class (neither dosings nor missed; one
 * dispensed all the same is a red dosing instead), and the staff's actions that made them.
 */
export type CareCounts = {
  doses: { suspended: number; travel: number; withdrawn: number };
  actions: { pause: number; resumeEarly: number; travel: number; withdrawFromTime: number; withdrawByLabel: number };
};

export function emptyCare(): CareCounts {
  return { doses: { suspended: 0, travel: 0, withdrawn: 0 }, actions: { pause: 0, resumeEarly: 0, travel: 0, withdrawFromTime: 0, withdrawByLabel: 0 } };
}

/** One episode's raw tallies: what workers send back and what merging adds up. */
export type SoakTally = {
  /** Index of the first dosing of this tally in the whole run (for ordering the series). */
  firstDosing: number;
  dosings: number;
  pills: number;
  outcomes: DoseClassCounts;
  /** Doses the citizen never pressed for inside their window (or meant to lift after it): counted apart, not dosings. */
  missed: number;
  missedReasons: Record<string, number>;
  /** Doses pressed inside their window and not received: registered (yellow: shown and told) or not (red). */
  robotFailures: { registered: number; unregistered: number };
  world: WorldCounts;
  /** Episodes with a red dosing or an invariant violation (for a one-line reproduction). */
  failingEpisodes: number[];
  /** How often each transition of the dose machine ran. */
  paths: Record<string, number>;
  yellowReasons: Record<string, number>;
  redReasons: Record<string, number>;
  invariantViolations: InvariantViolation[];
  /** Cumulative class counts sampled along the run: [dosings so far, correct, green, yellow, red]. */
  samples: [number, number, number, number, number][];
  /** Only in runs whose profile has care actions (so the figures of a run without stay as they were). */
  care?: CareCounts;
};

export type SeriesPoint = { dosings: number; accuracy: number; low: number; high: number } & DoseClassCounts;

/** Which build ran, when, and how it was started: enough to run it again. */
export type RunIdentity = {
  version: string; commit: string | null; date: string; commandLine: string; swarm: boolean;
  /** exact: every wire line played; coalesced: idle heartbeats skipped in virtual time (absent in reports from before the modes: exact). */
  mode?: 'exact' | 'coalesced';
};

export type SoakReport = {
  format: 'dosis-soak-report/1';
  build?: RunIdentity;
  seed: number;
  profile: string;
  transport: 'memory' | 'pty';
  workers: number;
  dosings: number;
  pills: number;
  missed: number;
  missedReasons: Record<string, number>;
  robotFailures: { registered: number; unregistered: number };
  /** Doses out of dispensing (not dosings, not missed) and the staff's actions; only when the run had care actions. */
  care?: CareCounts;
  world: WorldCounts;
  /** Episodes with a red dosing or an invariant violation. */
  failingEpisodes: number[];
  /**
   * The recovery paths: every transition of the dose machine with how often the run took it, and the named fault paths
   * of the world (host crashes, power cuts, packing errors, network faults: see `world`); `unexercised` lists the
   * transitions the run never took.
   */
  coverage: {
    transitions: Record<string, number>;
    unexercised: string[];
    /** Each named fault path of the world (`fault <name>`, `world <event>`, `packing <error>`, `network <fault>`) with its count. */
    faultPaths: Record<string, number>;
  };
  outcomes: DoseClassCounts;
  /** 1 − (green + yellow + red) / dosings: the reference robot's definition. */
  accuracy: number;
  accuracyCi95: Interval;
  redRate: number;
  redRateCi95: Interval;
  reasons: { yellow: Record<string, number>; red: Record<string, number> };
  invariantViolations: InvariantViolation[];
  /** Accuracy as dosings accumulate, for the chart. */
  series: SeriesPoint[];
  reference: typeof REFERENCE;
  /** Whether the run's accuracy interval lies wholly above, below, or across the reference. */
  verdict: 'beats-reference' | 'below-reference' | 'not-distinguishable';
  wallSeconds: number;
  dosingsPerSecond: number;
  /** True when the run was stopped (Ctrl-C) before all dosings ran. */
  interrupted: boolean;
};

export function emptyTally(firstDosing = 0): SoakTally {
  return {
    firstDosing,
    dosings: 0,
    pills: 0,
    outcomes: { correct: 0, green: 0, yellow: 0, red: 0 },
    missed: 0,
    missedReasons: {},
    robotFailures: { registered: 0, unregistered: 0 },
    world: { hostCrashes: 0, powerCuts: 0, packingErrors: {}, network: {}, faults: {}, events: {} },
    failingEpisodes: [],
    paths: {},
    yellowReasons: {},
    redReasons: {},
    invariantViolations: [],
    samples: [],
  };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Adds tallies in dosing order; the result equals one tally of the whole run. */
export function mergeTallies(tallies: SoakTally[]): SoakTally {
  const sorted = [...tallies].sort((a, b) => a.firstDosing - b.firstDosing);
  const out = emptyTally(sorted[0]?.firstDosing ?? 0);
  for (const t of sorted) {
    const base: [number, number, number, number, number] = [out.dosings, out.outcomes.correct, out.outcomes.green, out.outcomes.yellow, out.outcomes.red];
    for (const s of t.samples) out.samples.push([base[0] + s[0], base[1] + s[1], base[2] + s[2], base[3] + s[3], base[4] + s[4]]);
    out.dosings += t.dosings;
    out.pills += t.pills;
    out.missed += t.missed;
    addCounts(out.missedReasons, t.missedReasons);
    out.robotFailures.registered += t.robotFailures.registered;
    out.robotFailures.unregistered += t.robotFailures.unregistered;
    out.world.hostCrashes += t.world.hostCrashes;
    out.world.powerCuts += t.world.powerCuts;
    addCounts(out.world.packingErrors, t.world.packingErrors);
    addCounts(out.world.network, t.world.network);
    addCounts((out.world.faults ??= {}), t.world.faults ?? {});
    addCounts((out.world.events ??= {}), t.world.events ?? {});
    out.failingEpisodes.push(...t.failingEpisodes);
    addCounts(out.paths, t.paths);
    out.outcomes.correct += t.outcomes.correct;
    out.outcomes.green += t.outcomes.green;
    out.outcomes.yellow += t.outcomes.yellow;
    out.outcomes.red += t.outcomes.red;
    addCounts(out.yellowReasons, t.yellowReasons);
    addCounts(out.redReasons, t.redReasons);
    out.invariantViolations.push(...t.invariantViolations);
    if (t.care) {
      const c = (out.care ??= emptyCare());
      addCounts(c.doses, t.care.doses);
      addCounts(c.actions, t.care.actions);
    }
  }
  return out;
}

/** At most this many points in the accuracy series. */
const SERIES_POINTS = 200;

export function buildReport(
  tally: SoakTally,
  run: { seed: number; profile: string; transport: 'memory' | 'pty'; workers: number; wallSeconds: number; interrupted: boolean; build?: RunIdentity },
): SoakReport {
  const { dosings, outcomes } = tally;
  const errors = outcomes.green + outcomes.yellow + outcomes.red;
  const accuracyCi95 = wilson(dosings - errors, dosings);
  const samples = tally.samples.length > 0 && tally.samples.at(-1)![0] === dosings
    ? tally.samples
    : [...tally.samples, [dosings, outcomes.correct, outcomes.green, outcomes.yellow, outcomes.red] as SoakTally['samples'][number]];
  const step = Math.max(1, Math.ceil(samples.length / SERIES_POINTS));
  const series: SeriesPoint[] = samples
    .filter((_, i) => i % step === step - 1 || i === samples.length - 1)
    .filter((s) => s[0] > 0)
    .map(([n, correct, green, yellow, red]) => {
      const ci = wilson(n - green - yellow - red, n);
      return { dosings: n, correct, green, yellow, red, accuracy: (n - green - yellow - red) / n, low: ci.low, high: ci.high };
    });
  return {
    format: 'dosis-soak-report/1',
    ...(run.build ? { build: run.build } : {}),
    seed: run.seed,
    profile: run.profile,
    transport: run.transport,
    workers: run.workers,
    dosings,
    pills: tally.pills,
    missed: tally.missed,
    missedReasons: sortCounts(tally.missedReasons),
    robotFailures: { ...tally.robotFailures },
    ...(tally.care ? { care: { doses: { ...tally.care.doses }, actions: { ...tally.care.actions } } } : {}),
    world: { ...tally.world, packingErrors: sortCounts(tally.world.packingErrors), network: { ...tally.world.network } },
    failingEpisodes: [...new Set(tally.failingEpisodes)].sort((x, y) => x - y),
    coverage: { ...coverageOf(tally.paths), faultPaths: faultPathsOf(tally.world) },
    outcomes: { ...outcomes },
    accuracy: dosings > 0 ? 1 - errors / dosings : 0,
    accuracyCi95,
    redRate: dosings > 0 ? outcomes.red / dosings : 0,
    redRateCi95: wilson(outcomes.red, dosings),
    reasons: { yellow: sortCounts(tally.yellowReasons), red: sortCounts(tally.redReasons) },
    invariantViolations: tally.invariantViolations,
    series,
    reference: REFERENCE,
    verdict: accuracyCi95.low > REFERENCE.accuracy ? 'beats-reference' : accuracyCi95.high < REFERENCE.accuracy ? 'below-reference' : 'not-distinguishable',
    wallSeconds: run.wallSeconds,
    dosingsPerSecond: run.wallSeconds > 0 ? dosings / run.wallSeconds : 0,
    interrupted: run.interrupted,
  };
}

function coverageOf(paths: Record<string, number>): Omit<SoakReport['coverage'], 'faultPaths'> {
  const all = allTransitions();
  const transitions = Object.fromEntries([...new Set([...all, ...Object.keys(paths)])].sort().map((k) => [k, paths[k] ?? 0]));
  return { transitions, unexercised: all.filter((k) => !paths[k]) };
}

/** The world's named fault paths, each with its count (zero when it never happened). */
function faultPathsOf(w: WorldCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of FAULT_NAMES) out[`fault ${n}`] = w.faults?.[n] ?? 0;
  out['world hostCrash'] = w.hostCrashes;
  out['world powerCut'] = w.powerCuts;
  for (const e of ['cupAway', ...AIM_EVENTS]) out[`world ${e}`] = w.events?.[e] ?? 0;
  for (const k of ['one_more', 'one_fewer', 'empty', 'foreign']) out[`packing ${k}`] = w.packingErrors[k] ?? 0;
  for (const k of ['lostRequests', 'lostResponses', 'serverErrors', 'timeouts', 'restarts']) out[`network ${k}`] = w.network[k] ?? 0;
  return out;
}

function sortCounts(c: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** The figures of a report without timings: two runs with the same seed must agree on these. */
export function reportFigures(r: SoakReport): Omit<SoakReport, 'wallSeconds' | 'dosingsPerSecond' | 'workers' | 'build'> {
  const { wallSeconds: _w, dosingsPerSecond: _d, workers: _k, build: _b, ...figures } = r;
  return figures;
}

/**
 * Why the run must fail a CI job: any red dosing, unregistered robot failure or invariant violation; with
 * `failBelowReference`, also an accuracy interval wholly below the reference's. Empty when the run passes.
 */
export function failures(r: SoakReport, opts: { failBelowReference?: boolean } = {}): string[] {
  const out: string[] = [];
  if (r.outcomes.red > 0) out.push(`${r.outcomes.red} red dosing(s)`);
  const unregistered = r.robotFailures?.unregistered ?? 0;
  if (unregistered > 0) out.push(`${unregistered} unregistered robot failure(s)`);
  if (r.invariantViolations.length > 0) out.push(`${r.invariantViolations.length} invariant violation(s)`);
  if (opts.failBelowReference && r.verdict === 'below-reference') out.push(`accuracy below the reference's ${(REFERENCE.accuracy * 100).toFixed(2)} %`);
  return out;
}

export type ClassComparison = { name: string; a: number; b: number; test: ProportionTest; differs: boolean };

export type Comparison = {
  a: { dosings: number; accuracy: number };
  b: { dosings: number; accuracy: number };
  errors: ProportionTest;
  red: ProportionTest;
  /** Every class and count, per dosing: correct, green, yellow, red, missed, robot failures, invariant violations. */
  classes: ClassComparison[];
  /** True when any of them differs beyond chance (or something that must never happen happened in one run only). */
  differ: boolean;
  summary: string;
};

const CARE_ROWS = ['suspended', 'travel', 'withdrawn'] as const;
const careDoses = (r: SoakReport): number => (r.care ? r.care.doses.suspended + r.care.doses.travel + r.care.doses.withdrawn : 0);

/** Significance per comparison: 5 % shared over the classes compared (Bonferroni), so a run compared with itself rarely "differs". */
const FAMILY_ALPHA = 0.05;

/**
 * Whether build B differs from build A beyond chance, class by class (each as a share of the dosings, missed doses as
 * a share of all doses). Red dosings, unregistered robot failures and invariant violations must never happen: one run
 * having some and the other none is a difference whatever the counts.
 */
export function compareReports(a: SoakReport, b: SoakReport): Comparison {
  const errs = (r: SoakReport) => r.outcomes.green + r.outcomes.yellow + r.outcomes.red;
  const errors = twoProportionTest(errs(a), a.dosings, errs(b), b.dosings);
  const red = twoProportionTest(a.outcomes.red, a.dosings, b.outcomes.red, b.dosings);
  const rows: [string, (r: SoakReport) => number, (r: SoakReport) => number, boolean][] = [
    ['correct', (r) => r.outcomes.correct, (r) => r.dosings, false],
    ['green', (r) => r.outcomes.green, (r) => r.dosings, false],
    ['yellow', (r) => r.outcomes.yellow, (r) => r.dosings, false],
    ['red', (r) => r.outcomes.red, (r) => r.dosings, true],
    ['missed', (r) => r.missed, (r) => r.dosings + r.missed, false],
    ['robot failures registered', (r) => r.robotFailures?.registered ?? 0, (r) => r.dosings, false],
    ['robot failures unregistered', (r) => r.robotFailures?.unregistered ?? 0, (r) => r.dosings, true],
    ['invariant violations', (r) => r.invariantViolations.length, (r) => r.dosings, true],
    // Doses out of dispensing, as a share of all doses, when either run had any (the world's doing: two runs of one
    // profile must agree on them).
    ...(a.care || b.care ? CARE_ROWS : []).map((k): [string, (r: SoakReport) => number, (r: SoakReport) => number, boolean] => [k, (r) => r.care?.doses[k] ?? 0, (r) => r.dosings + r.missed + careDoses(r), false]),
  ];
  const alpha = FAMILY_ALPHA / rows.length;
  const classes = rows.map(([name, x, n, never]) => {
    const test = twoProportionTest(x(a), Math.max(n(a), x(a)), x(b), Math.max(n(b), x(b)));
    const differs = test.pValue < alpha || (never && (x(a) === 0) !== (x(b) === 0));
    return { name, a: x(a), b: x(b), test, differs };
  });
  const differ = classes.some((c) => c.differs);
  const pct = (x: number) => `${(x * 100).toFixed(3)} %`;
  const verdict = errors.significant
    ? `B is ${errors.difference < 0 ? 'more' : 'less'} accurate than A beyond chance (p = ${errors.pValue.toPrecision(2)})`
    : `no difference in accuracy beyond chance (p = ${errors.pValue.toPrecision(2)})`;
  const differing = classes.filter((c) => c.differs).map((c) => `${c.name} ${c.a} → ${c.b} (p = ${c.test.pValue.toPrecision(2)})`);
  return {
    a: { dosings: a.dosings, accuracy: a.accuracy },
    b: { dosings: b.dosings, accuracy: b.accuracy },
    errors,
    red,
    classes,
    differ,
    summary: `A ${pct(a.accuracy)} of ${a.dosings}, B ${pct(b.accuracy)} of ${b.dosings}: ${verdict}; ${differ ? `the runs differ: ${differing.join('; ')}` : 'no class differs beyond chance'}`,
  };
}

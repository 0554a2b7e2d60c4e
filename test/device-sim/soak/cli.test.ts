// `dosis soak` for CI and people: exit codes, --compare over every class, --swarm and --replay, the build in the report.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../../device-sim/src/soak/cli.js';
import { runEpisode } from '../../../device-sim/src/soak/episode.js';
import { episodeOf, planEpisodes, runSoak } from '../../../device-sim/src/soak/runner.js';
import { buildReport, compareReports, emptyTally, failures, type SoakReport, type SoakTally } from '../../../device-sim/src/soak/report.js';
import { loadSoakProfile, swarmProfile } from '../../../device-sim/src/soak/soak-profile.js';

const dir = mkdtempSync(join(tmpdir(), 'dosis-soak-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = { seed: 1, profile: 'reference', transport: 'memory' as const, workers: 1, wallSeconds: 2, interrupted: false };

function report(o: { correct: number; green?: number; yellow?: number; red?: number; missed?: number; violations?: number; unregistered?: number }): SoakReport {
  const t: SoakTally = emptyTally(0);
  t.outcomes = { correct: o.correct, green: o.green ?? 0, yellow: o.yellow ?? 0, red: o.red ?? 0 };
  t.dosings = o.correct + (o.green ?? 0) + (o.yellow ?? 0) + (o.red ?? 0);
  t.missed = o.missed ?? 0;
  t.robotFailures = { registered: o.yellow ?? 0, unregistered: o.unregistered ?? 0 };
  t.invariantViolations = Array.from({ length: o.violations ?? 0 }, (_, i) => ({ invariant: 5, dosing: i, detail: 'x' }));
  return buildReport(t, run);
}

function file(name: string, r: SoakReport): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(r));
  return p;
}

describe('exit rule', () => {
  it('fails on red, unregistered robot failures and invariant violations; below the reference only when asked', () => {
    expect(failures(report({ correct: 10_000, yellow: 5 }))).toEqual([]);
    expect(failures(report({ correct: 10_000, red: 1 }))).toHaveLength(1);
    expect(failures(report({ correct: 10_000, unregistered: 1 }))).toHaveLength(1);
    expect(failures(report({ correct: 10_000, violations: 1 }))).toHaveLength(1);
    const poor = report({ correct: 9_000, yellow: 1_000 });
    expect(poor.verdict).toBe('below-reference');
    expect(failures(poor)).toEqual([]);
    expect(failures(poor, { failBelowReference: true })).toHaveLength(1);
  });
});

describe('--compare', () => {
  it('exits 1 for a run with violations against one without, 0 for a run against itself', async () => {
    const a = file('a.json', report({ correct: 10_000, green: 10, yellow: 20 }));
    const b = file('b.json', report({ correct: 10_000, green: 10, yellow: 20, violations: 95 }));
    expect(await main(['--compare', a, a])).toBe(0);
    expect(await main(['--compare', a, b])).toBe(1);
  });

  it('sees a shift from green to yellow with the same number of errors, and more missed doses', () => {
    const a = report({ correct: 100_000, green: 300, yellow: 30 });
    const shifted = report({ correct: 100_000, green: 30, yellow: 300 });
    const c = compareReports(a, shifted);
    expect(c.errors.significant).toBe(false);
    expect(c.differ).toBe(true);
    expect(c.classes.filter((k) => k.differs).map((k) => k.name)).toEqual(expect.arrayContaining(['green', 'yellow', 'robot failures registered']));
    expect(compareReports(report({ correct: 10_000, missed: 27 }), report({ correct: 10_000, missed: 252 })).differ).toBe(true);
    expect(compareReports(a, a).differ).toBe(false);
  });
});

describe('the report and the run', () => {
  it('exits 0 on a clean run and carries version, commit, date and command line', async () => {
    const out = join(dir, 'clean.json');
    expect(await main(['--dosings', '30', '--seed', '4', '--profile', 'none', '--json', out])).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8')) as SoakReport;
    expect(r.dosings).toBe(30);
    expect(r.build?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.build?.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(Date.parse(r.build!.date)).not.toBeNaN();
    expect(r.build?.commandLine).toBe(`dosis soak --dosings 30 --seed 4 --profile none --json ${out}`);
  }, 60_000);
});

describe('--swarm and --replay', () => {
  it('draws each episode\'s faults and rates from its seed: the same seed the same profile, others differ', () => {
    const harsh = loadSoakProfile('harsh');
    expect(swarmProfile(harsh, 7)).toEqual(swarmProfile(harsh, 7));
    const drawn = [1, 2, 3, 4, 5, 6].map((s) => JSON.stringify(swarmProfile(harsh, s).faults));
    expect(new Set(drawn).size).toBe(6);
    const p = swarmProfile(harsh, 9);
    expect(Object.values(p.faults).some((r) => r === 0)).toBe(true);
    expect(Object.values(p.faults).every((r) => r !== undefined && r >= 0 && r <= 1)).toBe(true);
  });

  it('replays one episode of a swarm run alone, identically', async () => {
    const harsh = loadSoakProfile('harsh');
    const whole = await runSoak({ episodes: planEpisodes(31, 120, 40), profile: harsh, transport: 'memory', workers: 1, swarm: true, runEpisode });
    const alone = await runEpisode(episodeOf(31, 2, 40, 40), harsh, 'memory', { swarm: true });
    const third = await runEpisode(planEpisodes(31, 120, 40)[2]!, harsh, 'memory', { swarm: true });
    expect(alone).toEqual(third);
    expect(whole.tally.dosings).toBe(120);
  }, 180_000);
});

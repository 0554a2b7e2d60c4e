// The soak's episodes: the real controller against the simulator, judged by the ledger.
// Each fault alone gives the class its scenario predicts; a wrong controller is caught (red);
// the same seed gives the same figures, in one process or split over workers.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runEpisode, type DosingVerdict } from '../../../device-sim/src/soak/episode.js';
import { planEpisodes, runSoak } from '../../../device-sim/src/soak/runner.js';
import { loadSoakProfile, type SoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { buildReport, reportFigures, type SoakTally } from '../../../device-sim/src/soak/report.js';
import type { FaultName } from '../../../device-sim/src/faults.js';
import type { Reading, Verdict } from '../../../firmware-host/src/dosing/judge.js';

const none = loadSoakProfile('none');

function withFaults(faults: Partial<Record<FaultName, number>>, citizen: Partial<SoakProfile['citizen']> = {}): SoakProfile {
  return { ...none, name: 'test', faults, citizen: { ...none.citizen, ...citizen } };
}

function episode(profile: SoakProfile, dosings: number, seed = 11, opts: Parameters<typeof runEpisode>[3] = {}): Promise<SoakTally> {
  return runEpisode({ index: 0, seed, firstDosing: 0, dosings }, profile, 'memory', opts);
}

const errors = (t: SoakTally) => t.outcomes.green + t.outcomes.yellow + t.outcomes.red;

describe('soak episode (in memory)', () => {
  it('runs a fault-free episode: every dosing correct, pills counted, no invariant broken', async () => {
    const verdicts: DosingVerdict[] = [];
    const t = await episode(none, 120, 3, { onDosing: (d) => verdicts.push(d) });
    expect(t.dosings).toBe(120);
    expect(t.outcomes).toEqual({ correct: 120, green: 0, yellow: 0, red: 0 });
    expect(t.invariantViolations).toEqual([]);
    expect(t.pills).toBe(verdicts.reduce((n, v) => n + v.outcome!.expectedPills, 0));
    // More than one roll: the carousel holds 56 pouches.
    expect(new Set(verdicts.map((v) => v.doseId.split('-').slice(0, 2).join('-'))).size).toBeGreaterThan(1);
    expect(t.samples.at(-1)?.[0]).toBe(120);
  });

  it('counts forgotten doses as missed, apart from the dosings', async () => {
    const t = await episode(withFaults({}, { forgetRate: 0.2 }), 60, 5);
    expect(t.dosings).toBe(60);
    expect(t.missed).toBeGreaterThan(3);
    expect(t.invariantViolations).toEqual([]);
  });

  it('boots each host on what its dead predecessor committed: nothing a host does once it is down reaches the store', async () => {
    // A host that goes down between two commits of one step stops in the middle of it. Its controller hears the stop
    // as a failure and would record a controller error; a dead process records nothing, so no such alarm may reach
    // the centre through the hosts that boot after it.
    const profile: SoakProfile = { ...none, name: 'test', aim: { hostDownAfterOutcomeRate: 0.3 } };
    const posted: string[] = [];
    const t = await episode(profile, 30, 5, {
      wrapFetch: (f) => (input, init) => {
        posted.push(String(init?.body ?? ''));
        return f(input, init);
      },
    });
    expect(t.world.hostCrashes + t.world.powerCuts).toBeGreaterThan(3);
    expect(posted.some((b) => b.includes('power_restored'))).toBe(true);
    expect(posted.filter((b) => b.includes('controller_error'))).toEqual([]);
    expect(t.outcomes.red).toBe(0);
    expect(t.invariantViolations).toEqual([]);
  });

  it('gives the same figures for the same seed', async () => {
    const harsh = loadSoakProfile('harsh');
    const a = await episode(harsh, 150, 42);
    const b = await episode(harsh, 150, 42);
    expect(b).toEqual(a);
    expect(errors(a)).toBeGreaterThan(0);
    const c = await episode(harsh, 150, 43);
    expect(c).not.toEqual(a);
  }, 180_000);

  // Each named fault on its own, at a rate that makes it frequent: the class its scenario predicts, never red.
  const scenarios: { fault: FaultName; rate: number; expect: (t: SoakTally) => void }[] = [
    { fault: 'pillStuck', rate: 0.3, expect: (t) => expect(t.outcomes.green).toBeGreaterThan(10) },
    {
      fault: 'pillsStuckForGood', rate: 0.3,
      expect: (t) => expect(t.yellowReasons.undercount_after_retry ?? 0).toBeGreaterThan(10),
    },
    // Two pills in one pulse: resolved by the pulse width when it is long enough, else an implausible count (yellow), never red.
    {
      fault: 'overlap', rate: 0.2,
      expect: (t) => {
        expect(t.outcomes.correct).toBeGreaterThan(t.dosings * 0.75);
        expect(t.outcomes.correct + (t.yellowReasons.sensor_implausible ?? 0)).toBe(t.dosings);
      },
    },
    { fault: 'ghostPulse', rate: 0.3, expect: (t) => expect(t.outcomes.yellow + t.outcomes.correct).toBe(t.dosings) },
    { fault: 'missedPulse', rate: 0.1, expect: (t) => expect(t.yellowReasons.sensor_implausible ?? 0).toBeGreaterThan(5) },
    { fault: 'jam', rate: 0.2, expect: (t) => expect(errors(t)).toBeGreaterThan(0) },
    { fault: 'slip', rate: 0.2, expect: (t) => expect(t.outcomes.green + t.outcomes.yellow).toBeGreaterThan(0) },
    { fault: 'labelUnreadable', rate: 0.2, expect: (t) => expect(t.outcomes.green + t.outcomes.yellow).toBeGreaterThan(0) },
    { fault: 'corruptByte', rate: 0.002, expect: (t) => expect(t.outcomes.correct).toBe(t.dosings) },
    { fault: 'dropLine', rate: 0.02, expect: (t) => expect(t.outcomes.correct).toBe(t.dosings) },
    { fault: 'duplicateLine', rate: 0.05, expect: (t) => expect(t.outcomes.correct).toBe(t.dosings) },
    { fault: 'mcuReset', rate: 0.05, expect: (t) => expect(t.dosings).toBe(80) },
  ];
  for (const s of scenarios) {
    it(`${s.fault} alone: the predicted class, no red, no invariant broken`, async () => {
      const t = await episode(withFaults({ [s.fault]: s.rate }), 80, 7);
      expect(t.outcomes.red).toBe(0);
      expect(t.invariantViolations).toEqual([]);
      s.expect(t);
    });
  }

  it('catches a wrong controller: counting every pulse as one pill and ignoring the pouch gives red', async () => {
    const careless = (_p: unknown, expected: number, readings: readonly Reading[]): Verdict => {
      const pills = readings.reduce((n, r) => n + r.n, 0);
      return pills >= expected ? { kind: 'right', pills, overlapResolved: false } : { kind: 'yellow', reason: 'undercount_after_retry', pills };
    };
    const t = await episode(withFaults({ ghostPulse: 0.3, pillsStuckForGood: 0.3, overlap: 0.05 }), 80, 9, { judge: careless });
    expect(t.outcomes.red).toBeGreaterThan(0);
    expect(Object.keys(t.redReasons).length).toBeGreaterThan(0);
    // The same faults with the real rules: no red.
    const real = await episode(withFaults({ ghostPulse: 0.3, pillsStuckForGood: 0.3, overlap: 0.05 }), 80, 9);
    expect(real.outcomes.red).toBe(0);
  });
});

describe('soak runner', () => {
  it('gives the same report in one process and over two workers', async () => {
    const profile = loadSoakProfile('harsh');
    const episodes = planEpisodes(77, 240, 60);
    const run = (workers: number) => runSoak({ episodes, profile, transport: 'memory', workers, runEpisode });
    const [one, two] = [await run(1), await run(2)];
    const meta = { seed: 77, profile: 'harsh', transport: 'memory' as const, workers: 1, wallSeconds: 1, interrupted: false };
    expect(reportFigures(buildReport(two.tally, meta))).toEqual(reportFigures(buildReport(one.tally, meta)));
    expect(one.tally.dosings).toBe(240);
  }, 240_000);
});

describe.skipIf(spawnSync('socat', ['-V'], { stdio: 'ignore' }).status !== 0)('soak episode over real ptys', () => {
  it('runs dosings through serialport and socat, judged by the ledger', async () => {
    const t = await runEpisode({ index: 0, seed: 5, firstDosing: 0, dosings: 48 }, none, 'pty');
    expect(t.dosings).toBe(48);
    expect(t.outcomes.red).toBe(0);
    expect(t.invariantViolations).toEqual([]);
    expect(t.outcomes.correct).toBe(48);
  }, 60_000);
});

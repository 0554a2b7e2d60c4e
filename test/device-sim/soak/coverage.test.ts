// Recovery paths: the harsh profile must exercise every dose-machine transition and every named fault path of the world.
//
// The report counts each transition of the dose machine as the real controller takes it, and each named fault path
// (each simulator fault that fired, each world event: crashes, power cuts, the cup carried away, the aimed events,
// packing errors, network faults). A run of the harsh profile (fixed seed: the run is the same every time) must take
// every transition except those listed here, each with why the soak's world cannot reach it, and must leave no fault
// path at zero ("sometimes" assertions, as FoundationDB's); a change that makes the soak stop reaching a path fails
// this test, and so does a listed transition the soak now reaches (the list stays true).
import { describe, expect, it } from 'vitest';
import { runEpisode } from '../../../device-sim/src/soak/episode.js';
import { loadSoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { buildReport } from '../../../device-sim/src/soak/report.js';
import { allTransitions } from '../../../device-sim/src/soak/coverage.js';
import { episodeOf } from '../../../device-sim/src/soak/runner.js';
import { FAULT_NAMES } from '../../../device-sim/src/faults.js';
import { AIM_EVENTS } from '../../../device-sim/src/world/aim.js';

/**
 * Not reached by 1,000 harsh dosings, and why: each needs what the soak's world does not do from the outside.
 */
const NOT_REACHED: Record<string, string> = {
  'dose.dispensing.releasing REFUSED [refusedSlotEmpty] → dose.failed':
    'a fresh RELEASE for a pouch the MCU has already cut, with no MCU reset in between (a reset ends in refusedSlotEmptyAfterReset): the MCU marks its non-volatile cut map and id memory in the step that accepts a RELEASE, and the host commits each RELEASE intent before sending it, so a cut the host knows nothing of needs a host store that lost a commit',
  'dose.dispensing.starting always [withdrawn] → dose.withdrawn':
    'the store refuses the claim only when a care action or a roll unload commits in the milliseconds between the press\'s STATUS and the claim; the soak\'s staff act at times of their own plan (before a window or while the robot reminds), never aimed at that exchange',
  'dose.dispensing.checkingCup STATUS [beforeEarly] → dose.timing':
    'a press held (no cup, no link) while another process moves its dose later, so the retry finds the window not yet open: the soak never re-times a dose that was pressed for',
};

describe('recovery-path coverage', () => {
  it('names every transition of the dose machine, and the list above only real ones', () => {
    const all = allTransitions();
    expect(all.length).toBeGreaterThan(50);
    for (const k of Object.keys(NOT_REACHED)) expect(all).toContain(k);
  });

  it('harsh exercises every transition but the ones listed, each counted in the report', async () => {
    // The same episode as `dosis soak --profile harsh --dosings 1000 --seed 1` (and its `--replay 1:0`).
    const t = await runEpisode(episodeOf(1, 0, 1000), loadSoakProfile('harsh'), 'memory');
    const r = buildReport(t, { seed: 1, profile: 'harsh', transport: 'memory', workers: 1, wallSeconds: 1, interrupted: false });
    const unexpected = r.coverage.unexercised.filter((k) => !(k in NOT_REACHED));
    expect(unexpected).toEqual([]);
    // A transition listed as unreachable that the run takes: the list is wrong.
    expect(Object.keys(NOT_REACHED).filter((k) => (r.coverage.transitions[k] ?? 0) > 0)).toEqual([]);
    // Every named fault path: each simulator fault fired, each world event happened.
    const paths = r.coverage.faultPaths;
    for (const n of FAULT_NAMES) expect(Object.keys(paths)).toContain(`fault ${n}`);
    for (const e of AIM_EVENTS) expect(Object.keys(paths)).toContain(`world ${e}`);
    expect(Object.entries(paths).filter(([, n]) => n === 0).map(([k]) => k)).toEqual([]);
    expect(Object.keys(r.coverage.transitions).length).toBe(allTransitions().length);
    expect(r.coverage.transitions['dose.dispensing.judging always [verdictShake] → dose.dispensing.shaking']).toBeGreaterThan(0);
    expect(r.world.hostCrashes + r.world.powerCuts).toBeGreaterThan(0);
    expect(r.world.network.restarts).toBeGreaterThan(0);
  }, 600_000);
});

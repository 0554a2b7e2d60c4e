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
  'dose.presented after untilPresentedEnds [cupUnknown] → dose.failed':
    'a dose presented, then picked up by a restarted host whose store marks it cup-unknown, and left in the cup until its time ends: a lift the machine never heard while pills may be falling fails the dose from judging, so only a lift the store saw as uncertain (the dose dispensing after a RELEASE) while the machine ignored it reaches this — a lift between a RELEASE refused LATCHED or BUSY and the next one (clearing, checking the cup, rotating again), or while the host was down with no reading yet — followed by the dose presented, a host restart before the citizen takes the cup, and no lift until the close: four rare events in a row, beyond 1,000 dosings',
  'dose.dispensing.checkingCup STATUS [beforeEarly] → dose.timing':
    'a pressed dose whose early window then moved later: defensive, no process of the robot moves one. A dose\'s intake time and timing are written once, when its roll is loaded (Store.loadRoll; nothing updates intake_at_ms or timing_json), and a dose id (its pouch label) is never loaded twice (DOSIS_ERR_ROLL_LOADED_BEFORE), so every dose machine built for a pressed dose (after a restart, or when a care action restarts a held one) has the early time of the one that stored the press; only the host\'s clock stepping back across the press (a board that lost its time in a power cut, an NTP step) reaches it, and the soak\'s hosts keep the world\'s clock',
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

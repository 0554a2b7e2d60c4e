// Care in the soak: the staff pause the robot, release doses for travel and withdraw pouches through the robot's own care
// actions, and the referee judges those doses from its own record of what the staff did: suspended, travel or withdrawn,
// neither dosings nor missed. Test builds of the robot that get them wrong are caught.
import { describe, expect, it } from 'vitest';
import { runEpisode, type DosingVerdict, type EpisodeOptions } from '../../../device-sim/src/soak/episode.js';
import { loadSoakProfile, parseSoakProfile, type SoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { buildReport, failures, type SoakTally } from '../../../device-sim/src/soak/report.js';
import type { HostOptions } from '../../../device-sim/src/soak/host.js';
import { CARE_CLASSES } from '../../../device-sim/src/soak/referee.js';

const none = loadSoakProfile('none');
const careProfile = loadSoakProfile('care');

type Care = NonNullable<SoakProfile['care']>;
const NO_CARE: Care = {
  pauseRate: 0, pauseDoses: { min: 1, max: 1 }, resumeEarlyRate: 0, travelRate: 0, travelDoses: { min: 1, max: 1 },
  withdrawRate: 0, withdrawFromTimeRate: 0, withdrawDoses: { min: 1, max: 1 }, openWindowRate: 0, confusedPressRate: 0,
};

/** No faults, the given care actions. */
function withCare(care: Partial<Care>, over: Partial<SoakProfile> = {}): SoakProfile {
  return parseSoakProfile({ ...none, name: 'care-test', care: { ...NO_CARE, ...care }, ...over }, 'care test profile');
}

async function episode(profile: SoakProfile, dosings: number, seed: number, opts: EpisodeOptions = {}): Promise<{ tally: SoakTally; verdicts: DosingVerdict[] }> {
  const verdicts: DosingVerdict[] = [];
  const tally = await runEpisode({ index: 0, seed, firstDosing: 0, dosings }, profile, 'memory', { ...opts, onDosing: (d) => verdicts.push(d) });
  return { tally, verdicts };
}

const isCare = (v: DosingVerdict) => (CARE_CLASSES as readonly string[]).includes(v.soakClass);

/** Every care dose is its own class, apart from the dosings and the missed doses, and the robot said nothing of it. */
function expectCareApart(tally: SoakTally, verdicts: DosingVerdict[]): void {
  const care = verdicts.filter(isCare);
  expect(tally.dosings).toBe(verdicts.filter((v) => ['correct', 'green', 'yellow', 'red'].includes(v.soakClass)).length);
  expect(tally.missed).toBe(verdicts.filter((v) => v.soakClass === 'missed').length);
  for (const k of CARE_CLASSES) expect(tally.care!.doses[k]).toBe(care.filter((v) => v.soakClass === k).length);
  for (const v of care) expect(v.outcome).toBeUndefined();
}

describe('care in the soak', () => {
  it('the care profile: doses of every kind out of dispensing, none a dosing or missed, no violation', async () => {
    const { tally, verdicts } = await episode(careProfile, 250, 4);
    expect(tally.invariantViolations).toEqual([]);
    expect(tally.outcomes.red).toBe(0);
    for (const k of CARE_CLASSES) expect(tally.care?.doses[k], k).toBeGreaterThan(0);
    expectCareApart(tally, verdicts);
    const r = buildReport(tally, { seed: 4, profile: 'care', transport: 'memory', workers: 1, wallSeconds: 1, interrupted: false });
    expect(r.care?.doses).toEqual(tally.care!.doses);
    expect(failures(r)).toEqual([]);
  });

  it('every action (pauses ended early, withdrawals from a time and by label, with the window open) under host crashes and power cuts', async () => {
    const p = withCare(
      { pauseRate: 0.12, pauseDoses: { min: 1, max: 4 }, resumeEarlyRate: 0.6, travelRate: 0.1, travelDoses: { min: 1, max: 4 }, withdrawRate: 0.05, withdrawFromTimeRate: 0.3, withdrawDoses: { min: 1, max: 3 }, openWindowRate: 0.4, confusedPressRate: 0.4 },
      { host: { crashRate: 0.06, powerCutRate: 0.03 }, citizen: { ...none.citizen, forgetRate: 0.05 } },
    );
    const { tally, verdicts } = await episode(p, 150, 7);
    expect(tally.invariantViolations).toEqual([]);
    expect(tally.outcomes.red).toBe(0);
    expect(tally.world.hostCrashes + tally.world.powerCuts).toBeGreaterThan(0);
    for (const [k, n] of Object.entries(tally.care!.actions)) expect(n, k).toBeGreaterThan(0);
    expectCareApart(tally, verdicts);
  });
});

/** Runs a profile with and without a test build of the robot: the clean one must pass, the bug must be caught. */
async function caught(p: SoakProfile, seed: number, wrap: HostOptions['wrap'], dosings = 60): Promise<SoakTally> {
  const clean = await episode(p, dosings, seed);
  expect(clean.tally.invariantViolations).toEqual([]);
  expect(clean.tally.outcomes.red).toBe(0);
  const buggy = await episode(p, dosings, seed, { wrap });
  const r = buildReport(buggy.tally, { seed, profile: p.name, transport: 'memory', workers: 1, wallSeconds: 1, interrupted: false });
  expect(failures(r)).not.toEqual([]);
  return buggy.tally;
}

/** A store whose care action records itself but leaves the doses to be dispensed. */
function ignoring(action: 'pause' | 'withdraw'): HostOptions['wrap'] {
  return (_c, h) => {
    const store = h.store;
    const revert = (state: string) => store.db.prepare(`UPDATE doses SET state = 'scheduled', final_at_ms = NULL WHERE state = ?`).run(state);
    if (action === 'pause') {
      const pause = store.pause.bind(store);
      store.pause = (o) => {
        const r = pause(o);
        revert('suspended');
        return r;
      };
    } else {
      const withdraw = store.withdraw.bind(store);
      store.withdraw = (which, staffId) => {
        const r = withdraw(which, staffId);
        revert('withdrawn');
        return r;
      };
    }
  };
}

describe('planted care bugs: the soak catches each', () => {
  it('a robot that dispenses a suspended dose', async () => {
    const p = withCare({ pauseRate: 0.15, confusedPressRate: 1 });
    const t = await caught(p, 3, ignoring('pause'));
    expect(t.redReasons.dispensed_while_paused).toBeGreaterThan(0);
  });

  it('a robot that dispenses a withdrawn dose', async () => {
    const p = withCare({ withdrawRate: 0.15, withdrawDoses: { min: 1, max: 2 }, confusedPressRate: 1 });
    const t = await caught(p, 5, ignoring('withdraw'));
    expect(t.redReasons.dispensed_withdrawn).toBeGreaterThan(0);
  });

  it('a robot that reports a withdrawn dose missed', async () => {
    const p = withCare({ withdrawRate: 0.15, withdrawDoses: { min: 1, max: 2 } });
    const t = await caught(p, 5, ignoring('withdraw'));
    expect(t.invariantViolations.some((v) => v.invariant === 5 && /missed_dose at the centre for a dose out of dispensing/.test(v.detail))).toBe(true);
  });

  it('a robot that keeps reminding of a dose released for travel', async () => {
    const p = withCare({ travelRate: 0.15, travelDoses: { min: 1, max: 2 }, openWindowRate: 1 });
    // The controller's schedule change without its reminder stopping: the light set back to "remind" after it.
    const t = await caught(p, 9, (c, h) => {
      const changed = c.scheduleChanged.bind(c);
      c.scheduleChanged = () => {
        changed();
        h.link.send({ name: 'SIGNAL', mode: 'remind' }, () => undefined);
      };
    });
    expect(t.invariantViolations.some((v) => /the light showed remind/.test(v.detail))).toBe(true);
  });

  it('a robot whose pause never reaches the alarm centre', async () => {
    const p = withCare({ pauseRate: 0.15, pauseDoses: { min: 1, max: 3 } });
    const t = await caught(p, 3, (_c, h) => {
      const pause = h.store.pause.bind(h.store);
      h.store.pause = (o) => {
        const r = pause(o);
        h.store.db.prepare(`DELETE FROM outbox WHERE type = 'care_paused'`).run();
        return r;
      };
    });
    expect(t.invariantViolations.some((v) => /never silenced/.test(v.detail))).toBe(true);
  });
});

// Recovery paths: the harsh profile must exercise every dose-machine transition and every named fault path of the world.
//
// The report counts each transition of the dose machine as the real controller takes it, and each named fault path
// (each simulator fault that fired, each world event: crashes, power cuts, the cup carried away, the aimed events,
// packing errors, network faults). A run of the harsh profile (fixed seed: the run is the same every time) must take
// every transition except those listed here, each with why the soak's world cannot reach it, and must leave no fault
// path at zero ("sometimes" assertions, as FoundationDB's); a change that makes the soak stop reaching a path fails
// this test, and so does a listed transition the soak now reaches (the list stays true).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { createMemoryWire } from '../../../protocol/src/transport.js';
import { loadProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { bootHost } from '../../../device-sim/src/soak/host.js';
import { countTransitions } from '../../../device-sim/src/soak/coverage.js';
import { pouchLabel } from '../../../firmware-host/src/roll/types.js';
import { runEpisode, type DosingVerdict } from '../../../device-sim/src/soak/episode.js';
import { CARE_INVARIANT } from '../../../device-sim/src/soak/referee.js';
import { loadSoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { buildReport } from '../../../device-sim/src/soak/report.js';
import { allTransitions } from '../../../device-sim/src/soak/coverage.js';
import { episodeOf } from '../../../device-sim/src/soak/runner.js';
import { FAULT_NAMES } from '../../../device-sim/src/faults.js';
import { AIM_EVENTS } from '../../../device-sim/src/world/aim.js';

/**
 * Not reached by 1,000 harsh dosings, and why: each needs a chain of events beyond the run, something the soak's world
 * does not do, or what no process of the robot does (a defensive guard).
 */
const NOT_REACHED: Record<string, string> = {
  'dose.dispensing.releasing REFUSED [refusedSlotEmpty] → dose.failed':
    'a fresh RELEASE for a pouch the MCU has already cut, with no MCU reset in between (a reset ends in refusedSlotEmptyAfterReset): the MCU marks its non-volatile cut map and id memory in the step that accepts a RELEASE, and the host commits each RELEASE intent before sending it, so a cut the host knows nothing of needs a host store that lost a commit',
  'dose.presented after untilPresentedEnds [cupUnknown] → dose.failed':
    'a dose the store marked cup-unknown while its machine did not, presented, then picked up by a restarted host and left in the cup until its end (played alone below): the store takes a lift as uncertain whenever the dose is dispensing after a RELEASE, but the machine hears a lift only while releasing or shaking, so a lift after a RELEASE refused LATCHED or BUSY (clearing the latch, checking the cup, rotating again; told by the MCU\'s CUP event) is the store\'s alone; a host restart while the dose waits in the cup, and no lift until its end: a chain beyond 1,000 dosings, ending yellow all the same (cup_unknown where missed, left_in_cup was the truth)',
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
    const atClaim: DosingVerdict[] = [];
    const t = await runEpisode(episodeOf(1, 0, 1000), loadSoakProfile('harsh'), 'memory', { onDosing: (d) => void (d.careAtClaim && atClaim.push(d)) });
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
    // The doses the staff took as the robot checked the press: each judged as the staff's (never a dosing), none taken
    // for a robot failure, and no invariant of a dose out of dispensing (9) or of the alarm centre (5) broken.
    expect(atClaim.length).toBe(r.world.events?.careAtClaim);
    for (const d of atClaim) expect(['suspended', 'travel', 'withdrawn']).toContain(d.soakClass);
    expect(r.invariantViolations.filter((v) => v.invariant === CARE_INVARIANT || v.invariant === 5)).toEqual([]);
  }, 600_000);
});

describe('a listed transition played alone: the chain its reason names', () => {
  it('presented, picked up as cup-unknown by a restarted host, not taken: failed (cup_unknown)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-coverage-'));
    try {
      const file = join(dir, 'robot.db');
      const MIN = 60_000;
      const clock = new ManualClock(Date.UTC(2027, 0, 4, 6, 0));
      const profile = loadProfile('dosis-r1');
      const silent = pino({ level: 'silent' });
      const sim = new DeviceSimulator({ clock, profile, seed: 7, logger: silent });
      const paths: Record<string, number> = {};
      const boot = (hw: HardwareProfile) => {
        const h = bootHost({
          world: clock, profile: hw, dbPath: file, logger: silent, firstCommandNumber: 0, alarm: null,
          timing: { earlyMin: 1, reminderEveryMin: 1, overdueAfterMin: 2, closeAfterMin: 5 }, controller: { inspect: countTransitions(paths) },
          open: (c) => {
            const [near, far] = createMemoryWire(c, { baudRate: hw.baudRate });
            sim.attach(far);
            return near;
          },
        });
        expect(clock.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
        return h;
      };
      let h = boot(profile);
      const intakeAtMs = Math.ceil((clock.now() + 2 * MIN) / MIN) * MIN;
      const pouches = [{ rollId: 'P', position: 1, slot: 0, label: pouchLabel('P', 1), intakeAtMs, pillCount: 4 }];
      sim.loadPouches([{ slot: 0, label: pouches[0]!.label, pills: 4 }]);
      h.controller.loadSchedule({ rollId: 'P', citizenId: 'C1', pouches });
      // The first RELEASE trips the motor driver (refused LATCHED: cleared and tried again); during the second rotation the
      // citizen lifts the cup (still empty) and puts it back: the store marks the dose cup-unknown, the machine (rotating)
      // never hears of it.
      let tripped = false;
      let rotations = 0;
      sim.watch = {
        command: (c) => (c.name === 'RELEASE' && !tripped ? ((tripped = true), 'trip') : undefined),
        motion: (m) => {
          if (m.name !== 'ROTATE' || ++rotations !== 2) return;
          clock.setTimeout(() => sim.takeCup('citizen'), 1);
          clock.setTimeout(() => sim.placeCup(), Math.max(2, m.durationMs / 2));
        },
      };
      clock.runUntil(() => h.controller.status().phase === 'due', 10 * MIN);
      sim.pressButton();
      expect(clock.runUntil(() => h.store.dose('P-001')!.state === 'presented', 2 * MIN)).toBe(true);
      expect(h.store.cupUnknown('P-001')).toBe(true);
      // Ground truth: every pill fell into the cup in place, and the one lift took none.
      expect(sim.ledger.entries.filter((e) => e.pillsFell > 0).every((e) => e.cupPresent)).toBe(true);
      expect(sim.ledger.takes.map((t) => t.pills)).toEqual([0]);
      // The host restarts while the dose waits in the cup, and the citizen leaves it there until the window ends.
      const dead = h;
      dead.clock.die();
      clock.advance(3000);
      h = boot(profile);
      dead.link.close();
      dead.store.close();
      expect(clock.runUntil(() => h.store.dose('P-001')!.finalAtMs !== null, 30 * MIN)).toBe(true);
      expect(h.store.dose('P-001')).toMatchObject({ state: 'failed', cls: 'yellow', reason: 'cup_unknown' });
      expect(paths['dose.presented after untilPresentedEnds [cupUnknown] → dose.failed']).toBe(1);
      expect('dose.presented after untilPresentedEnds [cupUnknown] → dose.failed' in NOT_REACHED).toBe(true);
      await h.robot.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

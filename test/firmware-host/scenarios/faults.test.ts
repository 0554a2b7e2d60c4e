// Fault scenarios: the real controller against the simulator, one named fault at a time, judged against the ground-truth ledger.
//
// Every scenario is the same script on a ManualClock with a fixed seed:
//   dose 1        no fault                       → taken, correct
//   fault on      (from the start of dose 2, or only while a RELEASE runs)
//   doses 2…n−1   the fault at a rate that makes it certain or near-certain → the class the scenario expects
//   fault off
//   dose n        no fault                       → taken, correct (the robot recovered)
// The citizen presses once as each dose falls due and takes the cup when the robot signals; the staff empty a cup a
// failed dose left pills in.
// After the roll, the referee checks the safety invariants against the ledger.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { FAULT_NAMES, type FaultName, type FaultRates } from '../../../device-sim/src/faults.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import type { DosingOutcome } from '../../../firmware-host/src/controller.js';
import { citizenFor, DOSE_SPACING_MS, MIN, QUICK_TIMING, referee, tally, type RefereeReport, type ScenarioCitizen } from './kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
const silent = pino({ level: 'silent' });
const PILLS = [3, 2, 4, 5, 3, 4, 3];

let open: SimHarness | undefined;
afterEach(() => {
  open?.stop();
  open = undefined;
});

type Play = {
  faults: Partial<FaultRates>;
  /**
   * 'dose': on for the whole of each faulted dose; 'release': switched on as a faulted dose starts its RELEASE;
   * 'taken': switched on as a faulted dose ends taken (its SIGNAL off on the wire).
   */
  during?: 'dose' | 'release' | 'taken';
  /** With 'release' or 'taken': switched off this long after it went on, or at the MCU's reset (mcuReset). */
  offAfterMs?: number;
  seed?: number;
};

type Played = {
  h: SimHarness;
  outcomes: DosingOutcome[][];
  report: RefereeReport;
  citizen: ScenarioCitizen;
  linkLost: number;
  mcuResets: number;
};

/** Plays the script: a clean dose, the faulted ones, a clean one; returns every dose's outcomes and the referee's report. */
function play(p: Play): Played {
  const clock = new ManualClock(T0);
  const h = new SimHarness({ seed: p.seed ?? 20_27, clock, timing: QUICK_TIMING, logger: silent }).start();
  open = h;
  expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
  const pouches = h.loadRoll(PILLS.map((pills, i) => ({ intakeAtMs: T0 + 2 * MIN + i * DOSE_SPACING_MS, pills })));
  const ids = pouches.map((x) => x.label);
  const faulted = (i: number) => i > 0 && i < ids.length - 1;
  const set = (on: boolean) => {
    for (const name of FAULT_NAMES) h.sim.setFault(name, 0);
    if (on) for (const [name, rate] of Object.entries(p.faults)) h.sim.setFault(name as FaultName, rate);
  };
  let armedFor: string | undefined;
  let linkLost = 0;
  let mcuResets = 0;
  h.link.on('lost', () => linkLost++);
  h.link.on('mcuReset', () => {
    mcuResets++;
    if (p.during !== 'dose') set(false);
  });
  const outcomes: DosingOutcome[][] = ids.map(() => []);
  h.controller.on('outcome', (o) => {
    const i = ids.indexOf(o.doseId);
    outcomes[i]!.push(o);
    // The next dose's fault plan, set long before it is due.
    const next = i + 1;
    set(false);
    if (p.during === 'taken' && faulted(i) && o.final === 'taken') {
      set(true);
      if (p.offAfterMs !== undefined) clock.setTimeout(() => set(false), p.offAfterMs);
    }
    if (next < ids.length && faulted(next)) {
      if (p.during === 'release') armedFor = ids[next];
      else if (p.during !== 'taken') set(true);
    }
  });
  h.controller.on('status', (s) => {
    if (armedFor === undefined || s.step !== 'releasing' || s.current?.doseId !== armedFor) return;
    armedFor = undefined;
    // The RELEASE is on the wire now: the fault hits the MCU as it takes the command.
    set(true);
    if (p.offAfterMs !== undefined) clock.setTimeout(() => set(false), p.offAfterMs);
  });
  const citizen = citizenFor({ clock, sim: h.sim, controller: h.controller, store: h.store }).start();
  const done = h.runUntil(() => h.store.openDoses().length === 0, ids.length * DOSE_SPACING_MS + 60 * MIN);
  citizen.stop();
  expect(done, `doses still open: ${h.store.openDoses().map((d) => `${d.doseId} ${d.state}`).join(', ')}`).toBe(true);
  return { h, outcomes, report: referee(h.store, h.sim.ledger), citizen, linkLost, mcuResets };
}

/** The checks every scenario shares: invariants, no red, one outcome per dose, clean doses before and after, no stale light. */
function common(r: Played): void {
  const why = JSON.stringify(tally(r.report.verdicts));
  expect(r.report.violations, why).toEqual([]);
  expect(r.report.verdicts.filter((v) => v.red), why).toEqual([]);
  for (const list of r.outcomes) expect(list).toHaveLength(1);
  expect(r.outcomes[0]![0]).toMatchObject({ final: 'taken', cls: 'correct' });
  expect(r.outcomes.at(-1)![0]).toMatchObject({ final: 'taken', cls: 'correct' });
  // The robot's light never kept saying "take the cup" once the cup was taken (a SIGNAL off lost on a silent line).
  expect(r.citizen.staleLightMs).toBeLessThan(15_000);
}

const faultedOutcomes = (r: Played) => r.outcomes.slice(1, -1).map((l) => l[0]!);
const classOf = (o: DosingOutcome) => `${o.final}/${o.cls}${o.reason ? `/${o.reason}` : ''}`;

describe('pouch and sensor faults', () => {
  it('pillStuck: one pill stays in the pouch until the shake frees it → green', () => {
    const r = play({ faults: { pillStuck: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'taken', cls: 'green', attempts: 2, countedPills: o.expectedPills });
    // The ledger agrees: one release and one shake per faulted dose, every pill in the cup the citizen took.
    expect(r.report.executions).toBe(2 * 2 + 3 * faultedOutcomes(r).length);
  });

  it('pillsStuckForGood: a pill no shake frees → yellow undercount_after_retry, the alarm centre told', () => {
    const r = play({ faults: { pillsStuckForGood: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) {
      expect(o.final).toBe('failed');
      expect(o.cls).toBe('yellow');
      expect(['undercount_after_retry', 'pouch_not_empty']).toContain(o.reason);
      expect(r.h.store.db.prepare('SELECT count(*) AS n FROM outbox WHERE event_id = ?').get(`${o.doseId}:dose_failed`)).toEqual({ n: 1 });
    }
  });

  it('overlap: two pills through the gate as one long pulse → correct (overlap resolved) or yellow, never red', () => {
    const r = play({ faults: { overlap: 0.5 } });
    common(r);
    const seen = faultedOutcomes(r).map(classOf);
    for (const c of seen) expect(c).toMatch(/^taken\/correct(\/overlap_resolved)?$|^failed\/yellow\//);
    expect(seen.filter((c) => c !== 'taken/correct'), 'the fault must have acted at least once').not.toEqual([]);
  });

  it('ghostPulse: a noise pulse with every release → not red (the short pulse is ignored)', () => {
    const r = play({ faults: { ghostPulse: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) expect(classOf(o)).toMatch(/^taken\/(correct|green)|^failed\/yellow\//);
    // The sensor really did report an extra pulse: more pulses than pills fell.
    const extra = r.h.sim.ledger.entries.filter((e) => e.pulsesReported > e.pillsFell);
    expect(extra.length).toBeGreaterThan(0);
  });

  it('missedPulse: pills fall unseen → yellow sensor_implausible, never a guess', () => {
    const r = play({ faults: { missedPulse: 0.5 } });
    common(r);
    const seen = faultedOutcomes(r).map(classOf);
    for (const c of seen) expect(c).toMatch(/^taken\/correct$|^failed\/yellow\/(sensor_implausible|undercount_after_retry)$/);
    expect(seen.filter((c) => c.startsWith('failed/yellow')), 'the fault must have acted at least once').not.toEqual([]);
  });
});

describe('carousel faults', () => {
  it('jam on every rotation → yellow jam after the second try, nothing cut', () => {
    const r = play({ faults: { jam: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'failed', cls: 'yellow', reason: 'jam', attempts: 2 });
    expect(r.report.releases).toBe(2);
  });

  it('jam on half the rotations → correct, green on the second rotation, or yellow jam', () => {
    const r = play({ faults: { jam: 0.5 }, seed: 5 });
    common(r);
    const seen = faultedOutcomes(r).map(classOf);
    for (const c of seen) expect(c).toMatch(/^taken\/(correct|green)$|^failed\/yellow\/jam$/);
    expect(seen.some((c) => c === 'taken/green' || c === 'failed/yellow/jam'), seen.join(' ')).toBe(true);
  });

  it('slip on every rotation → yellow label_mismatch, the wrong pouch is never cut', () => {
    const r = play({ faults: { slip: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'failed', cls: 'yellow', reason: 'label_mismatch' });
    // Only the clean doses' pouches were cut (the referee also checks every cut pouch's label against its dose).
    expect(r.h.sim.ledger.entries.filter((e) => e.action === 'release').map((e) => e.label)).toEqual(['R1-001', 'R1-007']);
  });

  it('slip on half the rotations → a second rotation reads the right label (green) or yellow label_mismatch', () => {
    const r = play({ faults: { slip: 0.5 }, seed: 3 });
    common(r);
    const seen = faultedOutcomes(r).map(classOf);
    for (const c of seen) expect(c).toMatch(/^taken\/(correct|green)$|^failed\/yellow\/label_mismatch$/);
    expect(seen.some((c) => c !== 'taken/correct'), seen.join(' ')).toBe(true);
  });

  it('labelUnreadable on every rotation → yellow label_unreadable, nothing cut', () => {
    const r = play({ faults: { labelUnreadable: 1 } });
    common(r);
    for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'failed', cls: 'yellow', reason: 'label_unreadable' });
    expect(r.report.releases).toBe(2);
  });
});

describe('wire faults: the link hides them, every dose correct', () => {
  for (const [name, rate] of [['corruptByte', 0.003], ['dropLine', 0.15], ['duplicateLine', 0.5]] as const) {
    it(`${name}=${rate}`, () => {
      const r = play({ faults: { [name]: rate } });
      common(r);
      for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'taken', cls: 'correct' });
      const s = r.h.link.stats;
      // The fault did happen on the line: frames were rejected, resent or seen twice.
      expect(Object.values(s.rejected).reduce((a, b) => a + (b ?? 0), 0) + s.retransmits + s.duplicates + s.strayAcks).toBeGreaterThan(0);
    });
  }
});

describe('MCU faults', () => {
  it('mcuReset during every faulted RELEASE → a fresh RELEASE: yellow mcu_reset if the pouch was already cut, else recovered (green)', () => {
    const r = play({ faults: { mcuReset: 1 }, during: 'release' });
    common(r);
    expect(r.mcuResets).toBe(faultedOutcomes(r).length);
    const seen = faultedOutcomes(r).map(classOf);
    for (const c of seen) expect(c).toMatch(/^failed\/yellow\/(mcu_reset|unknown_after_restart)$|^taken\/(correct|green)$/);
    // Reset after the cut: the new RELEASE is refused by the MCU's cut map (yellow). Reset before it: the new RELEASE cuts (green).
    expect(seen).toContain('failed/yellow/mcu_reset');
    expect(seen).toContain('taken/green');
    for (const o of faultedOutcomes(r)) {
      const releases = r.h.store.intents(o.doseId).filter((i) => i.name === 'RELEASE');
      expect(releases).toHaveLength(2);
      expect(r.h.sim.ledger.cutCount(r.h.store.dose(o.doseId)!.slot)).toBe(1);
    }
  });

  it('mcuReset at random during a third of all motions → no command run twice, no red', () => {
    const r = play({ faults: { mcuReset: 0.3 }, seed: 8 });
    common(r);
    expect(r.mcuResets).toBeGreaterThan(0);
    for (const o of faultedOutcomes(r)) expect(classOf(o)).toMatch(/^failed\/yellow\/(mcu_reset|unknown_after_restart)$|^taken\/(correct|green)$/);
  });

  it('notAnswering as a RELEASE goes out (5 s of silence) → the host asks, the release runs once, correct', () => {
    const r = play({ faults: { notAnswering: 1 }, during: 'release', offAfterMs: 20 });
    common(r);
    expect(r.linkLost).toBeGreaterThanOrEqual(faultedOutcomes(r).length);
    for (const o of faultedOutcomes(r)) expect(classOf(o)).toMatch(/^taken\/(correct|green)$/);
    expect(r.report.releases).toBe(PILLS.length);
  });

  it('notAnswering as the cup is taken (SIGNAL off lost) → the light is put right when the MCU answers again', () => {
    const r = play({ faults: { notAnswering: 1 }, during: 'taken', offAfterMs: 20 });
    common(r);
    expect(r.linkLost).toBeGreaterThanOrEqual(faultedOutcomes(r).length);
    for (const o of faultedOutcomes(r)) expect(o).toMatchObject({ final: 'taken', cls: 'correct' });
  });

  it('notAnswering at random on 3 % of frames → no double release, the light always tells the truth', () => {
    const r = play({ faults: { notAnswering: 0.03 }, seed: 42 });
    common(r);
    expect(r.linkLost).toBeGreaterThan(0);
    for (const o of faultedOutcomes(r)) expect(classOf(o)).toMatch(/^taken\/(correct|green)$|^failed\/yellow\//);
  });
});

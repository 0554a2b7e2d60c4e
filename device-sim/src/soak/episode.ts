// One soak episode: the real controller (machine, link, store) against the simulator, a simulated citizen, and the referee.
//
// The controller cannot see its own red errors; the simulator's ledger can.
// After every dosing the episode compares what the controller stored with
// what physically happened (pills that fell, from which pouch, what the
// citizen took out of the cup) and checks the safety invariants of DESIGN.md
// against the ledger.
//
// Idle time is skipped, not simulated: the citizen's next dose is placed
// relative to the moment the previous one ended (its intake time set so the
// citizen's button press falls where the profile says), so a dosing costs
// the seconds of its own motions and not the hours between doses. Rolls of
// a full carousel are loaded one after another, so rotations, label checks
// and wrong-pouch faults are exercised as on a real roll.

import type { Statement } from 'better-sqlite3';
import pino from 'pino';
import { ManualClock, SystemClock, type Clock } from '../../../protocol/src/clock.js';
import { loadProfile, parseProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import { SimHarness } from '../harness/sim-harness.js';
import type { ControllerStatus, DosingOutcome } from '../../../firmware-host/src/controller.js';
import { DEFAULT_TIMING, type DoseTiming } from '../../../firmware-host/src/roll/types.js';
import type { ControllerOptions } from '../../../firmware-host/src/controller.js';
import { SerialTransport } from '../../../hardware/src/serial-transport.js';
import { Random } from '../random.js';
import type { FaultRates } from '../faults.js';
import { createPtyPair, keepSerialAttached } from '../pty.js';
import { emptyTally, mergeTallies, type InvariantViolation, type SoakTally } from './report.js';
import { episodeSeed, type EpisodeSpec } from './runner.js';
import type { SoakProfile } from './soak-profile.js';

export type EpisodeOptions = {
  /** QA only: a replacement for the controller's verdict rules (to prove the referee catches a wrong controller). */
  judge?: ControllerOptions['judge'];
  /** Called after every dosing with its verdict (tests). */
  onDosing?: (d: DosingVerdict) => void;
};

export type DosingVerdict = {
  dosing: number;
  outcome: DosingOutcome;
  /** Missed: never dispensed, or dispensed and not taken; not a dosing. */
  soakClass: 'correct' | 'green' | 'yellow' | 'red' | 'missed';
  reason: string | null;
};

/** Samples of the running class counts, every this many dosings (the report's chart). */
export const SAMPLE_EVERY = 100;

/** The pty transport runs on the wall clock; these robots' mechanics are fast so a dosing takes milliseconds. */
const PTY_HARDWARE: Partial<HardwareProfile> = {
  id: 'dosis-r1-soak-pty', stepsPerSecond: 400_000, labelReadMs: 1, cutMs: 1, pillFallMs: { min: 1, max: 4 }, settleMs: 25, shakeMs: 5, cupDebounceMs: 0,
};
/**
 * On the pty, time runs on the wall clock: the citizen's delays and the dose
 * windows (minutes on a real robot) are scaled by this, so a forgotten dose
 * closes in under a second instead of two hours. The mechanics keep their
 * settle time: with less, pills still falling are reported short.
 */
const PTY_TIME_SCALE = 0.0001;
/**
 * Robots run side by side in a pty episode, each with its own socat pair, simulator and store: a dosing waits on
 * motions and on the citizen most of its ~90 ms, so one process keeps this many busy at under one core.
 */
export const PTY_ROBOTS = 16;

const MIN = 60_000;
/** Longest a dosing may take before the episode calls the controller stuck (virtual time). */
const DOSE_LIMIT_MS = 4 * 3600_000;
/** ... but never less than this on the wall clock (motions take real time). */
const MIN_DOSE_LIMIT_MS = 30_000;
/** A wall-clock wait looks again at least this often even when the controller says nothing. */
const WALL_POLL_MS = 20;

function scaledTiming(scale: number): DoseTiming {
  const t = DEFAULT_TIMING;
  return { earlyMin: t.earlyMin * scale, reminderEveryMin: t.reminderEveryMin * scale, overdueAfterMin: t.overdueAfterMin * scale, closeAfterMin: t.closeAfterMin * scale };
}

type Plan = { forget: boolean; early: boolean; offsetMs: number; reactMs: number; takeCupMs: number; placeBackMs: number };

type Robot = { h: SimHarness; clock: Clock; close(): Promise<void> };

export async function runEpisode(spec: EpisodeSpec, profile: SoakProfile, transport: 'memory' | 'pty', opts: EpisodeOptions = {}): Promise<SoakTally> {
  if (transport === 'memory') return runRobot(spec, profile, memoryRobot(spec, profile, opts), 1, opts);
  // On the wall clock one robot waits most of the time (motions, the citizen); several robots, each on its own pty, share the CPU.
  const robots = Math.min(PTY_ROBOTS, spec.dosings);
  const parts: EpisodeSpec[] = [];
  for (let k = 0, first = spec.firstDosing; k < robots; k++) {
    const dosings = Math.floor(spec.dosings / robots) + (k < spec.dosings % robots ? 1 : 0);
    parts.push({ index: spec.index, seed: episodeSeed(spec.seed, k), firstDosing: first, dosings });
    first += dosings;
  }
  const tallies = await Promise.all(parts.map(async (part) => runRobot(part, profile, await ptyRobot(part, profile, opts), PTY_TIME_SCALE, opts)));
  return mergeTallies(tallies);
}

async function runRobot(spec: EpisodeSpec, profile: SoakProfile, robot: Robot, scale: number, opts: EpisodeOptions): Promise<SoakTally> {
  try {
    return await new Episode(spec, profile, robot, scale, opts).run();
  } finally {
    await robot.close();
  }
}

function memoryRobot(spec: EpisodeSpec, profile: SoakProfile, opts: EpisodeOptions): Robot {
  const clock = new ManualClock();
  const h = new SimHarness({ seed: spec.seed, faults: profile.faults as Partial<FaultRates>, clock, synchronous: 'OFF', judge: opts.judge });
  return { h, clock, close: async () => h.stop() };
}

async function ptyRobot(spec: EpisodeSpec, profile: SoakProfile, opts: EpisodeOptions): Promise<Robot> {
  const clock = new SystemClock();
  const hw = parseProfile({ ...loadProfile('dosis-r1'), ...PTY_HARDWARE }, 'soak pty profile');
  const pair = await createPtyPair({ clock });
  const h = new SimHarness({
    seed: spec.seed, faults: profile.faults as Partial<FaultRates>, clock, profile: hw, synchronous: 'OFF', judge: opts.judge, timing: scaledTiming(PTY_TIME_SCALE),
    open: () => SerialTransport.open(pair.hostPath, hw.baudRate),
  });
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: hw.baudRate, clock, attach: (t) => h.sim.attach(t), logger: pino({ level: 'silent' }) });
  return {
    h, clock,
    close: async () => {
      h.stop();
      detach();
      await pair.close();
    },
  };
}

class Episode {
  readonly #tally: SoakTally;
  readonly #rng: Random;
  readonly #h: SimHarness;
  readonly #clock: Clock;
  #plans = new Map<string, Plan>();
  #outcomes = new Map<string, DosingOutcome[]>();
  /** The doses of the roll loaded now, in order. */
  #roll: string[] = [];
  #next = 0;
  #dosingIndex = 0;
  /** The controller's status as last announced (reading it afresh at every clock step would cost a query each). */
  #status: ControllerStatus | undefined;
  readonly #timing: DoseTiming;
  readonly #limitMs: number;
  /** Wakes a wall-clock wait early: the controller announced something. */
  #wake: (() => void) | undefined;
  /** Places the next dose of the roll in time (once per dosing: prepared once). */
  readonly #retime: Statement<[number, string]>;

  constructor(
    private readonly spec: EpisodeSpec,
    private readonly profile: SoakProfile,
    private readonly robot: Robot,
    private readonly scale: number,
    private readonly opts: EpisodeOptions,
  ) {
    this.#tally = emptyTally(spec.firstDosing);
    // The citizen's choices come from their own stream, so fault draws in the simulator do not shift them.
    this.#rng = new Random((spec.seed ^ 0x5eed_c17e) >>> 0);
    this.#h = robot.h;
    this.#clock = robot.clock;
    this.#timing = scaledTiming(scale);
    this.#limitMs = Math.max(MIN_DOSE_LIMIT_MS, DOSE_LIMIT_MS * scale);
    this.#retime = this.#h.store.db.prepare(`UPDATE doses SET intake_at_ms = ? WHERE dose_id = ? AND state = 'scheduled'`);
  }

  async run(): Promise<SoakTally> {
    const h = this.#h;
    h.controller.on('outcome', (o) => this.#onOutcome(o));
    h.controller.on('status', (s) => {
      this.#status = s;
      this.#wake?.();
    });
    h.start();
    if (!(await this.#wait(() => h.controller.status().reconciled, 60_000))) throw new Error(`episode ${this.spec.index}: the controller never reconciled with the simulator`);
    while (this.#tally.dosings < this.spec.dosings) {
      if (this.#next >= this.#roll.length) this.#loadRoll();
      await this.#dose(this.#roll[this.#next]!);
      this.#next++;
    }
    return this.#tally;
  }

  // ------------------------------------------------------------ the citizen

  #plan(): Plan {
    const r = this.#rng;
    const c = this.profile.citizen;
    const s = this.scale;
    const forget = r.chance(c.forgetRate);
    const early = !forget && r.chance(c.earlyPressRate);
    // Early: pressed 1 min to (early window − 1 min) before the intake time; otherwise the profile's delay after it.
    const offsetMs = (early ? -r.between(1, DEFAULT_TIMING.earlyMin - 1) * MIN : r.between(c.pressDelayMin.min, c.pressDelayMin.max) * MIN) * s;
    return {
      forget, early, offsetMs,
      reactMs: r.between(1000, 5000) * s,
      takeCupMs: r.between(c.takeCupDelaySec.min, c.takeCupDelaySec.max) * 1000 * s,
      placeBackMs: r.between(2000, 10_000) * s,
    };
  }

  /** Intake time so that "now" is the moment the citizen is about to press. */
  #intakeFor(plan: Plan): number {
    return Math.round(this.#clock.now() - plan.offsetMs);
  }

  #loadRoll(): void {
    const h = this.#h;
    const n = h.profile.slotCount;
    const far = this.#clock.now() + 365 * 24 * 3600_000;
    const doses = Array.from({ length: n }, (_, i) => ({ intakeAtMs: far + i * 6 * 3600_000, pills: this.#pills() }));
    // The first dose's time is known now; the others are placed when their turn comes.
    const plan = this.#plan();
    doses[0]!.intakeAtMs = this.#intakeFor(plan);
    // A new roll: the ledger's per-slot counts start over with the new pouches.
    h.sim.ledger.clear();
    const pouches = h.loadRoll(doses, `R${this.spec.index}-${this.#dosingIndex}`);
    const rows = h.store.remainingPouches();
    this.#roll = pouches.map((p) => rows.find((r) => r.slot === p.slot)!.doseId);
    this.#plans = new Map([[this.#roll[0]!, plan]]);
    this.#next = 0;
  }

  #pills(): number {
    const w = this.profile.pillsPerDose.weights;
    const entries = Object.entries(w);
    let total = 0;
    for (const [, x] of entries) total += x;
    let u = this.#rng.next() * total;
    for (const [k, x] of entries) {
      u -= x;
      if (u < 0) return Number(k);
    }
    return Number(entries[entries.length - 1]![0]);
  }

  /** The controller finished a dose; place the next one of the roll before the controller picks it up. */
  #onOutcome(o: DosingOutcome): void {
    const list = this.#outcomes.get(o.doseId) ?? [];
    list.push(o);
    this.#outcomes.set(o.doseId, list);
    this.#wake?.();
    const idx = this.#roll.indexOf(o.doseId);
    const nextId = idx >= 0 ? this.#roll[idx + 1] : undefined;
    if (nextId && !this.#plans.has(nextId)) {
      const plan = this.#plan();
      this.#plans.set(nextId, plan);
      this.#retime.run(this.#intakeFor(plan), nextId);
    }
  }

  async #dose(doseId: string): Promise<void> {
    const h = this.#h;
    const plan = this.#plans.get(doseId);
    if (!plan) throw new Error(`episode ${this.spec.index}: dose ${doseId} has no plan`);
    const ended = () => this.#outcomes.has(doseId);
    const open = () => {
      const s = this.#status;
      return s?.current?.doseId === doseId && (s.phase === 'early' || s.phase === 'due' || s.phase === 'overdue');
    };
    await this.#need(() => open() || ended(), this.#limitMs, doseId, 'the dose never opened');
    if (!plan.forget && !ended()) {
      await this.#sleep(plan.reactMs);
      h.sim.pressButton();
      const presented = () => this.#status?.phase === 'presented' && this.#status.current?.doseId === doseId;
      await this.#need(() => presented() || ended(), this.#limitMs, doseId, 'the dose was neither presented nor ended');
      if (presented()) {
        await this.#sleep(plan.takeCupMs);
        await this.#cupOut(plan);
      }
    }
    await this.#need(ended, this.#limitMs, doseId, 'the dose never ended');
    // A dose that was not taken may have left pills in the cup (some the sensor never saw): the care staff empty it before
    // the next dose, as the citizen screen asks them to.
    const final = this.#outcomes.get(doseId)![0]!.final;
    if (final !== 'taken' || h.sim.status().pillsInCup > 0 || !h.sim.cupPresent) await this.#cupOut(plan);
    this.#judge(doseId);
  }

  async #cupOut(plan: Plan): Promise<void> {
    const sim = this.#h.sim;
    if (sim.cupPresent) sim.takeCup();
    await this.#sleep(plan.placeBackMs);
    sim.placeCup();
  }

  // ------------------------------------------------------------ the referee

  #judge(doseId: string): void {
    const h = this.#h;
    const outcome = this.#outcomes.get(doseId)![0]!;
    const row = h.store.dose(doseId)!;
    const ledger = h.sim.ledger;
    const ids = new Set(outcome.commandIds);
    const entries = ledger.entries.filter((e) => ids.has(e.commandId));
    const fell = entries.reduce((n, e) => n + e.pillsFell, 0);
    const releases = entries.filter((e) => e.action === 'release');
    const dosing = this.spec.firstDosing + this.#tally.dosings;
    const violations: InvariantViolation[] = [];
    const violate = (invariant: number, detail: string) => violations.push({ invariant, dosing, detail: `dose ${doseId}: ${detail}` });

    // 1. No slot or pouch dispensed twice; no command executed twice.
    if (ledger.cutCount(row.slot) > 1) violate(1, `slot ${row.slot} cut ${ledger.cutCount(row.slot)} times`);
    for (const id of ids) if (ledger.executions(id) > 1) violate(1, `command ${id} executed ${ledger.executions(id)} times`);
    const otherCuts = ledger.entries.filter((e) => e.action === 'release' && e.slot === row.slot && !ids.has(e.commandId));
    if (otherCuts.length > 0) violate(1, `slot ${row.slot} released by another dose's command ${otherCuts[0]!.commandId}`);
    // 2. Nothing dispensed outside its window.
    const timing = { ...this.#timing, ...row.timing };
    const opensAt = row.intakeAtMs - timing.earlyMin * MIN;
    const closesAt = row.intakeAtMs + timing.closeAfterMin * MIN;
    for (const e of releases) if (e.atMs < opensAt || e.atMs > closesAt) violate(2, `released at ${e.atMs}, window ${opensAt}–${closesAt}`);
    // 3. Nothing dispensed onto a dose not taken (nor with the cup away).
    for (const e of releases) {
      if (e.cupPillsBefore > 0) violate(3, `released onto ${e.cupPillsBefore} pills still in the cup`);
      if (!e.cupPresent) violate(3, 'released with the cup away');
    }
    // 4. Exactly one final state, stored.
    const count = this.#outcomes.get(doseId)!.length;
    if (count !== 1) violate(4, `${count} final outcomes`);
    if (row.state !== outcome.final) violate(4, `stored state ${row.state}, reported ${outcome.final}`);
    // 5 (device side). Every yellow and missed dose is in the outbox once, with its stable id.
    const alarm = outcome.final === 'failed' ? 'dose_failed' : outcome.final === 'missed' ? 'missed_dose' : null;
    if (alarm) {
      const n = (h.store.db.prepare('SELECT count(*) AS n FROM outbox WHERE event_id = ?').get(`${doseId}:${alarm}`) as { n: number }).n;
      if (n !== 1) violate(5, `${n} outbox rows for ${alarm}`);
    }
    this.#tally.invariantViolations.push(...violations);

    let soakClass: DosingVerdict['soakClass'];
    let reason: string | null = outcome.reason;
    if (outcome.final === 'missed') {
      soakClass = 'missed';
      // A dose the robot calls missed must not have dropped pills it did not register.
      if (fell > 0 && outcome.cls === null) {
        soakClass = 'red';
        reason = 'unregistered_release';
      }
    } else if (outcome.final === 'failed') {
      soakClass = 'yellow';
    } else {
      soakClass = outcome.cls === 'green' ? 'green' : 'correct';
      const took = ledger.takes.find((t) => t.atMs >= (releases[0]?.atMs ?? Infinity));
      if (releases.some((e) => e.label !== row.label || e.slot !== row.slot)) reason = 'wrong_pouch';
      else if (fell < row.pillCount) reason = 'fewer_pills_than_prescribed';
      else if (fell > row.pillCount) reason = 'more_pills_than_prescribed';
      else if (took && took.pills !== row.pillCount) reason = 'cup_held_other_pills';
      else reason = null;
      if (reason) soakClass = 'red';
    }

    if (soakClass === 'missed') this.#tally.missed++;
    else {
      this.#tally.dosings++;
      this.#tally.pills += row.pillCount;
      this.#tally.outcomes[soakClass]++;
      if (soakClass === 'yellow') this.#tally.yellowReasons[reason ?? 'unknown'] = (this.#tally.yellowReasons[reason ?? 'unknown'] ?? 0) + 1;
      if (soakClass === 'red') this.#tally.redReasons[reason ?? 'unknown'] = (this.#tally.redReasons[reason ?? 'unknown'] ?? 0) + 1;
      const t = this.#tally;
      if (t.dosings % SAMPLE_EVERY === 0 || t.dosings === this.spec.dosings) {
        t.samples.push([t.dosings, t.outcomes.correct, t.outcomes.green, t.outcomes.yellow, t.outcomes.red]);
      }
    }
    this.opts.onDosing?.({ dosing, outcome, soakClass, reason });
    this.#dosingIndex++;
  }

  // ------------------------------------------------------------ time

  /** Runs the clock until `done`: virtual time jumps from event to event; on the wall clock, wakes on the controller's news. */
  async #wait(done: () => boolean, limitMs: number): Promise<boolean> {
    const clock = this.#clock;
    if (clock instanceof ManualClock) return clock.runUntil(done, limitMs);
    const end = clock.now() + limitMs;
    while (!done()) {
      if (clock.now() >= end) return false;
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(() => resolve(), WALL_POLL_MS);
        this.#wake = () => {
          clock.clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return true;
  }

  async #need(done: () => boolean, limitMs: number, doseId: string, what: string): Promise<void> {
    if (await this.#wait(done, limitMs)) return;
    const s = this.#h.controller.status();
    throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: ${what} (phase ${s.phase}, step ${s.step}, notice ${s.notice}, link ${s.link})`);
  }

  async #sleep(ms: number): Promise<void> {
    const clock = this.#clock;
    const until = clock.now() + ms;
    if (clock instanceof ManualClock) clock.runUntil(() => clock.now() >= until, ms + 1);
    else await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
  }
}

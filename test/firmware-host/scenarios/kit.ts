// Scenario kit: the simulated citizen (device-sim/src/world/citizen.ts, the soak's) given a plan for each dose as it
// comes up, the care staff, the safety invariants checked on the store's write-ahead intents against the simulator's
// ledger, and each dose classed by the soak's referee (one definition of red).
//
// The citizen acts on a plan per dose (`CitizenPlan`): the kit reads the
// dose the robot shows next and its window (the dose machine's `doseWindows`)
// and derives the plan from the scenario's `Habits`: when to press, how long
// to take over lifting the cup. From then on the citizen acts on what the
// robot shows, as in the soak. As a dose ends, the care staff empty a cup it
// left pills in (device-sim/src/world/staff.ts, as the soak's episode does).
// The referee knows what the controller cannot: which pouch was physically
// cut, how many pills fell, what the citizen took out of the cup. Everything
// runs on the Clock given, so the same code drives a ManualClock scenario and
// a wall-clock pty run.

import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import type { Ledger } from '../../../device-sim/src/ledger.js';
import type { Controller } from '../../../firmware-host/src/controller.js';
import { FINAL_STATES, type DoseRow, type Store } from '../../../firmware-host/src/store/store.js';
import { pouchLabel, type DoseTiming, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { doseWindows, type DoseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';
import { judgeDose, type Intent } from '../../../device-sim/src/soak/referee.js';
import { Citizen, type CitizenPlan } from '../../../device-sim/src/world/citizen.js';
import { staffTakeCup } from '../../../device-sim/src/world/staff.js';

export const MIN = 60_000;

/** Short windows so a scenario of several doses costs little virtual time; still the whole early → due → overdue → closed path. */
export const QUICK_TIMING: DoseTiming = { earlyMin: 1, reminderEveryMin: 1, overdueAfterMin: 2, closeAfterMin: 5 };
/** Doses of a scenario roll are this far apart (the next early window opens when the dose before closes). */
export const DOSE_SPACING_MS = 6 * MIN;

/**
 * The robot as the kit meets it now: what its screen shows (phase and notice) and its store (the dose it will dispense
 * next, and when that dose ended); undefined while its host is down.
 */
export type RobotNow = { phase: string; notice: string | null; store: Store } | undefined;

/** How the citizen of a scenario goes about every dose (the plan each dose gets). */
export type Habits = {
  /**
   * When the citizen presses for a dose, from its due time (negative: in the early window), one press each; [] for a
   * scenario that presses itself. Default [0]: once, as the dose falls due.
   */
  pressAfterDueMs?: readonly number[];
  /** From the light saying "take the cup" to the cup lifted (default 0). */
  liftDelayMs?: number;
  /** From the cup lifted to the cup put back, the citizen's and the staff's (default 5 s). */
  placeBackMs?: number;
  /**
   * After the last of those presses, again this often while the dose's window is open (and the citizen still acts on
   * it: the kit ends that as the dose ends): a citizen who presses until the robot dispenses, also when a host that
   * went down lost a press. Default: no more presses than listed.
   */
  pressEveryMs?: number;
  /** Once the cup is back, they lift it again this long later while the light still says "take the cup". Default: never. */
  liftAgainAfterMs?: number;
};

export type ScenarioCitizenOptions = {
  clock: Clock;
  sim: DeviceSimulator;
  robot: () => RobotNow;
  habits?: Habits;
  /** The kit looks at the robot this often for the next dose, a dose's end and the light (default 1 s). */
  pollMs?: number;
  /** The world citizen's own options (how often they look, when they press again, the margin before the close). */
  citizen?: { lookEveryMs?: number; pressAgainMs?: number; pressMarginMs?: number };
};

/**
 * The world's citizen in a scenario: each dose the robot shows next gets a plan from the habits; as it ends, the staff
 * empty a cup left with pills. It also watches the light: `staleLightMs` is the longest the light said "take the cup"
 * while no dose waited in it (a lost SIGNAL off), an observer's measure, not something the citizen does.
 */
export class ScenarioCitizen {
  readonly citizen: Citizen;
  /** Longest the robot's light said "take the cup" while no dose waited in it (a lost SIGNAL off). */
  staleLightMs = 0;
  readonly #o: ScenarioCitizenOptions;
  readonly #habits: Required<Habits>;
  #timer: TimerHandle | undefined;
  #running = false;
  #doseId: string | undefined;
  #ended = new Set<string>();
  #staleSinceMs: number | undefined;

  constructor(o: ScenarioCitizenOptions) {
    this.#o = o;
    this.#habits = { pressAfterDueMs: [0], liftDelayMs: 0, placeBackMs: 5000, pressEveryMs: Infinity, liftAgainAfterMs: Infinity, ...o.habits };
    const c = o.citizen ?? {};
    this.citizen = new Citizen({
      clock: o.clock, sim: o.sim, notice: () => o.robot()?.notice ?? null,
      ...(c.lookEveryMs !== undefined ? { lookEveryMs: c.lookEveryMs } : {}),
      ...(c.pressAgainMs !== undefined ? { pressAgainMs: c.pressAgainMs } : {}),
      ...(c.pressMarginMs !== undefined ? { pressMarginMs: c.pressMarginMs } : {}),
    });
  }

  /**
   * The plan the habits give a dose with these windows, seen first at `nowMs`. The citizen presses when the robot's
   * screen asks: presses that fell while it was dark (its host down, so the kit saw the dose only now) become one
   * press now.
   */
  planFor(w: DoseWindows, nowMs: number): CitizenPlan {
    const h = this.#habits;
    const meant = h.pressAfterDueMs.map((t) => w.dueAtMs + t);
    const last = meant.at(-1);
    if (last !== undefined) for (let t = last + h.pressEveryMs; t < w.closeAtMs; t += h.pressEveryMs) meant.push(t);
    const pressAtMs = meant.filter((t) => t >= nowMs);
    if (pressAtMs.length < meant.length && nowMs < w.closeAtMs) pressAtMs.unshift(nowMs);
    return {
      forget: false, pressAtMs, liftDelayMs: h.liftDelayMs, placeBackMs: h.placeBackMs,
      ...(h.liftAgainAfterMs !== Infinity ? { liftAgainAfterMs: h.liftAgainAfterMs } : {}),
    };
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#look();
    return this;
  }

  stop(): void {
    this.#running = false;
    this.#o.clock.clearTimeout(this.#timer);
    // The citizen stops acting on the dose; a cup in their hand is still put back.
    this.citizen.end();
  }

  #look(): void {
    if (!this.#running) return;
    const { clock, sim } = this.#o;
    const robot = this.#o.robot();
    const now = clock.now();
    if (sim.status().signal === 'present' && robot?.phase !== 'presented') {
      this.#staleSinceMs ??= now;
      this.staleLightMs = Math.max(this.staleLightMs, now - this.#staleSinceMs);
    } else this.#staleSinceMs = undefined;
    if (robot) {
      // The dose the citizen acts on ended: they stop, and the staff empty a cup it left pills in.
      const id = this.#doseId;
      if (id !== undefined && !this.#ended.has(id) && robot.store.dose(id)?.finalAtMs != null) {
        this.#ended.add(id);
        this.citizen.end();
        if (staffTakeCup(sim)) clock.setTimeout(() => sim.placeCup(), this.#habits.placeBackMs);
      }
      // The dose the robot will dispense next (the first open one): the citizen's plan for it takes effect.
      const cur = robot.store.openDoses(1)[0];
      if (cur && cur.doseId !== this.#doseId && !this.#ended.has(cur.doseId)) {
        this.#doseId = cur.doseId;
        const w = windowsOfDose(robot.store, cur.doseId)!;
        this.citizen.expect(w, this.planFor(w, now));
      }
    }
    this.#timer = clock.setTimeout(() => this.#look(), this.#o.pollMs ?? 1000);
  }
}

/** A dose's windows as the dose machine computes them (the one definition), from the store's rows of its roll. */
export function windowsOfDose(store: Store, doseId: string): DoseWindows | undefined {
  const doses = store.allDoses();
  const d = doses.find((x) => x.doseId === doseId);
  return d ? windowsIn(d, doses) : undefined;
}

/** A dose's windows among the doses of its roll: the next dose's early time closes it, if sooner than its own close. */
function windowsIn(d: DoseRow, doses: readonly DoseRow[]): DoseWindows {
  const next = doses
    .filter((o) => o.rollId === d.rollId && (o.intakeAtMs > d.intakeAtMs || (o.intakeAtMs === d.intakeAtMs && o.position > d.position)))
    .sort((a, b) => a.intakeAtMs - b.intakeAtMs || a.position - b.position)[0];
  return doseWindows(d.intakeAtMs, d.timing, next ? next.intakeAtMs - next.timing.earlyMin * MIN : null);
}

/** What the kit reads of a robot in this process (undefined while its host is down). */
export function robotNow(host: { controller: Controller; store: Store } | undefined): RobotNow {
  if (!host) return undefined;
  const s = host.controller.status();
  return { phase: s.phase, notice: s.notice, store: host.store };
}

/** A scenario on one robot that stays up (a SimHarness, a robot on a pty): the kit's citizen for it. */
export function citizenFor(o: { clock: Clock; sim: DeviceSimulator; controller: Controller; store: Store } & Omit<ScenarioCitizenOptions, 'clock' | 'sim' | 'robot'>): ScenarioCitizen {
  const host = { controller: o.controller, store: o.store };
  return new ScenarioCitizen({ ...o, robot: () => robotNow(host) });
}

/** A roll of `pills.length` pouches in slots 0…n−1, the first due `firstInMs` from now, then every `spacingMs`. */
export function scenarioRoll(rollId: string, nowMs: number, pills: readonly number[], firstInMs = 5 * MIN, spacingMs = DOSE_SPACING_MS): ScheduledPouch[] {
  const start = Math.ceil((nowMs + firstInMs) / MIN) * MIN;
  return pills.map((n, i) => ({ rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: start + i * spacingMs, pillCount: n }));
}

// ------------------------------------------------------------------ the referee

export type Verdict = { doseId: string; final: string; cls: string | null; reason: string | null; red: string | null };

export type RefereeReport = {
  /** Safety-invariant violations (must be empty). */
  violations: string[];
  /** The ground truth's class per dose, with the controller's own. */
  verdicts: Verdict[];
  /** Motions the ledger saw, and how many of them were releases. */
  executions: number;
  releases: number;
};

type IntentRaw = { command_id: string; dose_id: string; name: string; slot: number; sent_at_ms: number };

/**
 * Checks the store of one roll (or all rolls since the ledger was last cleared)
 * against the ledger: each slot cut at most once, each command id executed at
 * most once and only ids the host wrote ahead, every RELEASE sent inside its
 * dose's window and onto an empty cup in place, every dose exactly one final
 * state (one final row in the event log), nothing physically dispensed for a
 * dose after its final state, no release of a pouch other than the dose's, and
 * no red dose as the soak's referee (`judgeDose`) classes it from the ledger.
 */
export function referee(store: Store, ledger: Ledger, opts: { rollIds?: readonly string[]; intent?: Intent } = {}): RefereeReport {
  const violations: string[] = [];
  const doses = store.allDoses().filter((d) => !opts.rollIds || opts.rollIds.includes(d.rollId));
  const doseIds = new Set(doses.map((d) => d.doseId));
  const intents = (store.db.prepare('SELECT command_id, dose_id, name, slot, sent_at_ms FROM intents ORDER BY n').all() as IntentRaw[]).filter((i) =>
    doseIds.has(i.dose_id),
  );
  const intentOf = new Map(intents.map((i) => [i.command_id, i]));
  const doseById = new Map(doses.map((d) => [d.doseId, d]));
  let executions = 0;

  // 1. No slot cut twice; no command executed twice; the MCU ran only commands the host wrote ahead.
  for (const slot of new Set(doses.map((d) => d.slot))) {
    if (ledger.cutCount(slot) > 1) violations.push(`slot ${slot} cut ${ledger.cutCount(slot)} times`);
  }
  for (const i of intents) {
    const n = ledger.executions(i.command_id);
    executions += n;
    if (n > 1) violations.push(`command ${i.command_id} (${i.name} of ${i.dose_id}) executed ${n} times`);
  }
  const releases = ledger.entries.filter((e) => e.action === 'release');
  for (const e of ledger.entries) {
    const i = intentOf.get(e.commandId);
    if (!i) {
      violations.push(`ledger ${e.action} by command ${e.commandId} that no dose wrote ahead`);
      continue;
    }
    const d = doseById.get(i.dose_id)!;
    if (e.label !== d.label) violations.push(`${e.action} for ${d.doseId} cut pouch ${e.label ?? '(none)'} in slot ${e.slot}`);
    // 3. Nothing dispensed onto a dose not taken, nor with the cup away.
    if (e.action === 'release' && e.cupPillsBefore > 0) violations.push(`release for ${d.doseId} onto ${e.cupPillsBefore} pills still in the cup`);
    if (e.pillsFell > 0 && !e.cupPresent) violations.push(`${e.action} for ${d.doseId}: ${e.pillsFell} pills fell with the cup away`);
    // 4b. Nothing leaves a pouch after its dose was final.
    if (d.finalAtMs !== null && e.atMs > d.finalAtMs) violations.push(`${e.action} of ${d.doseId} at ${e.atMs}, after its final state at ${d.finalAtMs}`);
  }
  for (const i of intents) {
    const d = doseById.get(i.dose_id)!;
    if (d.finalAtMs !== null && i.sent_at_ms > d.finalAtMs) violations.push(`${i.name} ${i.command_id} recorded for ${d.doseId} after its final state`);
  }

  // 2. Nothing dispensed outside its window: every RELEASE the MCU ran was sent between the dose's early time and its close
  // (close: closeAfterMin after its time, or when the next dose of the roll opens, if sooner).
  for (const i of intents) {
    if (i.name !== 'RELEASE' || ledger.executions(i.command_id) === 0) continue;
    const d = doseById.get(i.dose_id)!;
    const w = windowsIn(d, doses);
    if (i.sent_at_ms < w.earlyAtMs || i.sent_at_ms > w.closeAtMs) {
      violations.push(`RELEASE of ${d.doseId} sent at ${i.sent_at_ms}, outside its window ${w.earlyAtMs}–${w.closeAtMs}`);
    }
  }

  // 4. Every dose exactly one final state, and one final row in the append-only event log.
  const finals = store.db.prepare(`SELECT dose_id, count(*) AS n FROM events WHERE type IN ('dose_taken','dose_missed','dose_failed') GROUP BY dose_id`).all() as {
    dose_id: string;
    n: number;
  }[];
  const finalCount = new Map(finals.map((f) => [f.dose_id, f.n]));
  for (const d of doses) {
    if (!FINAL_STATES.includes(d.state)) violations.push(`dose ${d.doseId} is not final (${d.state})`);
    const n = finalCount.get(d.doseId) ?? 0;
    const want = d.state === 'returned' ? 0 : 1;
    if (n !== want) violations.push(`dose ${d.doseId} (${d.state}) has ${n} final events in the log`);
    if (d.finalAtMs === null) violations.push(`dose ${d.doseId} has no final time`);
  }

  const byTime = [...doses].sort((a, b) => a.intakeAtMs - b.intakeAtMs || a.position - b.position);
  const nextOf = new Map(byTime.map((d, i) => [d.doseId, byTime.slice(i + 1).find((o) => o.rollId === d.rollId)]));
  const intent = opts.intent ?? { forget: false, liftDelayMs: 0 };
  const verdicts = doses.map((d) => ({ doseId: d.doseId, final: d.state, cls: d.cls, reason: d.reason, red: redReason(d, nextOf.get(d.doseId), store, ledger, intent) }));
  return { violations, verdicts, executions, releases: releases.filter((e) => doseIds.has(intentOf.get(e.commandId)?.dose_id ?? '')).length };
}

/**
 * Why a dose is red, or null: the soak's referee (`judgeDose`, one definition of red for the soak and the scenarios)
 * judges it from the ledger and the citizen's intent. A scenario's roll is packed exactly as printed, so the pouch
 * the robot was loaded with (slot, label, printed count) is the prescription; the store also gives the events the
 * robot queued for the alarm centre (a scenario has no centre: the outbox is what it would get). The ledger's stretch
 * of a dose runs from its window's opening to the next dose's.
 */
function redReason(d: DoseRow, next: DoseRow | undefined, store: Store, ledger: Ledger, intent: Intent): string | null {
  const w = doseWindows(d.intakeAtMs, d.timing, next ? next.intakeAtMs - next.timing.earlyMin * MIN : null);
  const fromMs = w.earlyAtMs - (d.timing.earlyMin === 0 ? 0 : 1);
  const toMs = next ? next.intakeAtMs - next.timing.earlyMin * MIN - 1 : Infinity;
  const alarms = (store.db.prepare('SELECT type FROM outbox WHERE dose_id = ?').all(d.doseId) as { type: string }[]).map((r) => r.type);
  const finals = (store.db.prepare(`SELECT count(*) AS n FROM events WHERE dose_id = ? AND type IN ('dose_taken','dose_missed','dose_failed')`).get(d.doseId) as { n: number }).n;
  const j = judgeDose({
    prescription: { doseId: d.doseId, slot: d.slot, label: d.label, printedPills: d.pillCount, packing: 'ok', packedPills: d.pillCount, windows: w },
    intent, ledger, fromMs, toMs, alarms, finals: Math.max(finals, 1), robotReason: d.reason,
  });
  if (d.state === 'returned' || d.state === 'withdrawn' || d.state === 'suspended' || d.state === 'travel') {
    const fell = ledger.entries.filter((e) => e.atMs >= fromMs && e.atMs <= toMs && e.slot === d.slot).reduce((n, e) => n + e.pillsFell, 0);
    return fell > 0 ? `released_then_${d.state}` : null;
  }
  return j.cls === 'red' ? (j.reason ?? 'red') : null;
}

/** Counts of verdicts by `final/cls/reason`, for assertion messages and reports. */
export function tally(verdicts: readonly Verdict[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of verdicts) {
    const key = `${v.final}${v.cls ? `/${v.cls}` : ''}${v.reason ? `/${v.reason}` : ''}${v.red ? ` RED:${v.red}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** A dose's story for a failure message: its log, its intents, what the ledger saw and what the citizen took meanwhile. */
export function explain(store: Store, ledger: Ledger, doseId: string): string {
  const d = store.dose(doseId);
  if (!d) return `${doseId}: no such dose`;
  const events = store.db.prepare('SELECT at_ms, type, detail_json FROM events WHERE dose_id = ? ORDER BY id').all(doseId) as { at_ms: number; type: string; detail_json: string | null }[];
  const intents = store.intents(doseId);
  const ids = new Set(intents.map((i) => i.commandId));
  const from = Math.min(d.intakeAtMs - d.timing.earlyMin * MIN, ...intents.map((i) => i.sentAtMs));
  const to = (d.finalAtMs ?? Infinity) + MIN;
  const rel = (ms: number) => `+${ms - from}`;
  return [
    `${doseId} slot ${d.slot} ${d.state} ${d.cls ?? ''} ${d.reason ?? ''} expected ${d.pillCount} counted ${d.countedPills ?? '-'}; times relative to ${from}`,
    ...events.map((e) => `  log ${rel(e.at_ms)} ${e.type} ${e.detail_json ?? ''}`),
    ...intents.map((i) => `  intent ${rel(i.sentAtMs)} ${i.name} ${i.commandId} ${i.result ?? '(no result)'}`),
    ...ledger.entries.filter((e) => ids.has(e.commandId) || (e.atMs >= from && e.atMs <= to)).map((e) => `  ledger ${rel(e.atMs)} ${e.action} ${e.commandId} slot ${e.slot} ${e.label} fell ${e.pillsFell} cupBefore ${e.cupPillsBefore}`),
    ...ledger.takes.filter((t) => t.atMs >= from && t.atMs <= to).map((t) => `  take ${rel(t.atMs)} ${t.pills} pills by ${t.by}`),
    ...ledger.presses.filter((t) => t >= from - d.timing.earlyMin * MIN && t <= to).map((t) => `  press ${rel(t)}`),
  ].join('\n');
}


// Scenario kit: a simulated citizen on the injected clock, the safety invariants checked on the store's write-ahead
// intents against the simulator's ledger, and each dose classed by the soak's referee (one definition of red).
//
// The citizen presses the button while a dose is due, takes the cup when the
// robot signals `present` or `error` (or asks for the cup to be emptied) and
// puts it back a little later. The referee knows what the controller cannot:
// which pouch was physically cut, how many pills fell, what the citizen took
// out of the cup. Everything runs on the Clock given, so the same code drives
// a ManualClock scenario and a wall-clock pty run.

import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import type { Ledger } from '../../../device-sim/src/ledger.js';
import type { Controller } from '../../../firmware-host/src/controller.js';
import { FINAL_STATES, type DoseRow, type Store } from '../../../firmware-host/src/store/store.js';
import { pouchLabel, type DoseTiming, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { doseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';
import { judgeDose, type Intent } from '../../../device-sim/src/soak/referee.js';

export const MIN = 60_000;

/** Short windows so a scenario of several doses costs little virtual time; still the whole early → due → overdue → closed path. */
export const QUICK_TIMING: DoseTiming = { earlyMin: 1, reminderEveryMin: 1, overdueAfterMin: 2, closeAfterMin: 5 };
/** Doses of a scenario roll are this far apart (the next early window opens when the dose before closes). */
export const DOSE_SPACING_MS = 6 * MIN;

export type CitizenOptions = {
  clock: Clock;
  sim: DeviceSimulator;
  /** The citizen looks at the robot this often. */
  pollMs?: number;
  /** A press that did not start a dispense is repeated after this long. */
  pressAgainMs?: number;
  /** The cup is put back this long after it was taken. */
  placeBackMs?: number;
  /** The citizen reaches for the cup this long after the robot asked for it. */
  takeAfterMs?: number;
  /** After putting the cup back, the citizen does not take it again for this long. */
  retakeAfterMs?: number;
  /** Phases in which the citizen presses the button (a dose may be taken early, on the button). */
  pressIn?: readonly string[];
  /** What the robot shows (the screen): phase and notice of the current dose. */
  view: () => { phase: string; notice: string | null } | undefined;
};

export class Citizen {
  presses = 0;
  takes = 0;
  /** Longest the robot's light said "take the cup" while no dose waited in it (a lost SIGNAL off). */
  staleLightMs = 0;
  #staleSinceMs: number | undefined;
  #wantedSinceMs: number | undefined;
  readonly #o: Required<CitizenOptions>;
  #timer: TimerHandle | undefined;
  #lastPressAtMs = -Infinity;
  #cupBackAtMs = -Infinity;
  #running = false;

  constructor(o: CitizenOptions) {
    this.#o = { pollMs: 1000, pressAgainMs: 20_000, placeBackMs: 5000, takeAfterMs: 0, retakeAfterMs: 10_000, pressIn: ['due', 'overdue'], ...o };
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#arm();
    return this;
  }

  stop(): void {
    this.#running = false;
    this.#o.clock.clearTimeout(this.#timer);
  }

  #arm(): void {
    this.#timer = this.#o.clock.setTimeout(() => {
      if (!this.#running) return;
      this.#look();
      this.#arm();
    }, this.#o.pollMs);
  }

  #look(): void {
    const { clock, sim } = this.#o;
    const now = clock.now();
    const view = this.#o.view();
    const signal = sim.status().signal;
    if (signal === 'present' && view?.phase !== 'presented') {
      this.#staleSinceMs ??= now;
      this.staleLightMs = Math.max(this.staleLightMs, now - this.#staleSinceMs);
    } else this.#staleSinceMs = undefined;
    const wantsCup = signal === 'present' || (signal === 'error' && sim.status().pillsInCup > 0) || view?.notice === 'cup_not_empty';
    if (!wantsCup) this.#wantedSinceMs = undefined;
    else this.#wantedSinceMs ??= now;
    if (wantsCup && sim.cupPresent && now >= this.#cupBackAtMs && now - this.#wantedSinceMs! >= this.#o.takeAfterMs) {
      // Pills left in the cup by a failed dose are emptied as the care staff would (the robot said not to take them).
      sim.takeCup(signal === 'present' ? 'citizen' : 'staff');
      this.takes++;
      this.#cupBackAtMs = now + this.#o.placeBackMs + this.#o.retakeAfterMs;
      clock.setTimeout(() => sim.placeCup(), this.#o.placeBackMs);
      return;
    }
    if (view && this.#o.pressIn.includes(view.phase) && sim.cupPresent && now - this.#lastPressAtMs >= this.#o.pressAgainMs) {
      this.#lastPressAtMs = now;
      this.presses++;
      sim.pressButton();
    }
  }
}

/** The controller's view for the citizen (phase and notice of the running dose). */
export function controllerView(controller: Controller): () => { phase: string; notice: string | null } {
  return () => {
    const s = controller.status();
    return { phase: s.phase, notice: s.notice };
  };
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
    const w = windowOf(d, doses);
    if (i.sent_at_ms < w.opensAtMs || i.sent_at_ms > w.closesAtMs) {
      violations.push(`RELEASE of ${d.doseId} sent at ${i.sent_at_ms}, outside its window ${w.opensAtMs}–${w.closesAtMs}`);
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

/** A dose's window as the dose machine computes it (the one definition): early time to close, or the next dose's early time if sooner. */
function windowOf(d: DoseRow, doses: readonly DoseRow[]): { opensAtMs: number; closesAtMs: number } {
  const next = doses
    .filter((o) => o.rollId === d.rollId && (o.intakeAtMs > d.intakeAtMs || (o.intakeAtMs === d.intakeAtMs && o.position > d.position)))
    .sort((a, b) => a.intakeAtMs - b.intakeAtMs || a.position - b.position)[0];
  const w = doseWindows(d.intakeAtMs, d.timing, next ? next.intakeAtMs - next.timing.earlyMin * MIN : null);
  return { opensAtMs: w.earlyAtMs, closesAtMs: w.closeAtMs };
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


// The referee: judges each dose from ground truth alone — its own copy of the prescription and of the citizen's intent,
// and the simulator's ledger — never from the controller's records.
//
// What it knows that the controller cannot:
// - the prescription: which pouch the dose is, how many pills are printed on it, and how the pharmacy really packed it
//   (one pill more or fewer, an empty pouch, a foreign pill);
// - the citizen's intent: whether they meant to press at all, and how long they take to lift the cup once told;
// - the ledger: every press, every motion, what fell from which pouch, every lift of the cup and by whom, every mode
//   of the light and every notice on the screen.
//
// Each dose gets one class:
//   correct    the citizen lifted exactly the printed pills of the right pouch out of the cup, first time
//   green      the same, after a retry (a shake, a second rotation or release)
//   yellow     pressed inside its window and not received, or received wrong (pills short or over, a wrong or foreign
//              pill, the cup lifted before the robot presented it), and the robot both showed it (error light or a
//              notice on the screen) and told the alarm centre: a registered failure
//   red        the citizen got wrong pills and the robot did not both show and tell it; or pressed inside the window, not
//              received, and the robot did not show or did not tell (an unregistered robot failure); or pills fell
//              without a press; or the centre was told of a failure for a dose the citizen took as presented
//   missed     never pressed inside its window (forgotten, or pressed only too early or too late), or the right pills
//              waited in the cup past the window because the citizen meant to lift it later: not a dosing
// The dose's windows are the dose machine's own (`doseWindows`), so the referee and the robot agree on them.
//
// Doses the staff took out of dispensing (judgeCareDose) get their own class, from the referee's own record of what the
// staff did (never the robot's):
//   suspended  in a pause (a hospital stay), not ended early for it
//   travel     released ahead of time for a travel pack
//   withdrawn  withdrawn on a prescription change (from a time, or by label)
// They are neither dosings nor missed. A pill fallen from such a pouch at the robot makes the dose a red dosing
// (`dispensed_while_paused`, `dispensed_travel_dose`, `dispensed_withdrawn`), whoever pressed.
//
// The safety invariants of DESIGN.md are checked on the same ground truth: 1 no pouch cut twice and no command run
// twice, 2 nothing released outside the dose's window, 3 nothing released onto pills still in the cup, 4 one final state per dose (as the robot announced it), 5 the alarm centre holds exactly one alarm for every
// yellow, robot failure and missed dose, and none for a dose taken (nor for a dose out of dispensing). The soak adds
// 9 (DESIGN.md, doses outside the daily round): once the staff have acted, the robot's light neither reminds of a dose
// out of dispensing nor presents it, and the robot announces no final outcome for it.

import type { Ledger } from '../ledger.js';
import { doseWindows, type DoseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';
import { DEFAULT_TIMING, type DoseTiming } from '../../../firmware-host/src/roll/types.js';

export { doseWindows, type DoseWindows };

/** How the pharmacy really packed a pouch (the printed count is the prescription). */
export type Packing = 'ok' | 'one_more' | 'one_fewer' | 'empty' | 'foreign';

export type Prescription = {
  doseId: string;
  slot: number;
  label: string;
  /** The count printed on the pouch: what the citizen must get. */
  printedPills: number;
  packing: Packing;
  /** Pills really in the pouch (a foreign pill counts as one). */
  packedPills: number;
  windows: DoseWindows;
};

export type Intent = {
  /** The citizen means never to press for this dose. */
  forget: boolean;
  /** How long after the light says "take the cup" the citizen lifts it. */
  liftDelayMs: number;
};

/** The classes of doses the staff took out of dispensing: their own line in the report, not dosings, not missed. */
export type CareClass = 'suspended' | 'travel' | 'withdrawn';
export const CARE_CLASSES: readonly CareClass[] = ['suspended', 'travel', 'withdrawn'];

export type DoseClass = 'correct' | 'green' | 'yellow' | 'red' | 'missed';

export type Judgement = {
  cls: DoseClass;
  /** Why: a red or missed reason, a yellow's (from the robot's own word, for the table only), or null. */
  reason: string | null;
  /** Pressed inside the window and not received. */
  robotFailure: boolean;
  violations: { invariant: number; detail: string }[];
};

/** Final alarm-event types, one of which every robot failure and missed dose must reach the centre as. */
export const FINAL_ALARMS = ['dose_failed', 'missed_dose'] as const;

/** A press this close to the window's close may reach the robot after it (a line lost and resent, an MCU silent): not counted as inside. */
export const PRESS_MARGIN_MS = 60_000;
/** Notices on the screen that tell the citizen the dose could not be given now. */
const FAILURE_NOTICES: ReadonlySet<string> = new Set(['cup_missing', 'cup_not_empty', 'link_lost']);

/** The windows of a dose at `intakeAtMs` with the robot's default timing (or the roll's). */
export function windowsOf(intakeAtMs: number, timing: Partial<DoseTiming> = {}, nextEarlyAtMs: number | null = null): DoseWindows {
  return doseWindows(intakeAtMs, { ...DEFAULT_TIMING, ...timing }, nextEarlyAtMs);
}

export type JudgeInput = {
  prescription: Prescription;
  intent: Intent;
  ledger: Ledger;
  /** The stretch of the ledger that belongs to this dose (only one dose is open at a time). */
  fromMs: number;
  toMs: number;
  /** Alarm events the centre holds for this dose, by type. */
  alarms: readonly string[];
  /** How many final outcomes the robot announced for the dose. */
  finals: number;
  /** The robot's own reason, used only to label a yellow in the report. */
  robotReason?: string | null;
  /** Presses this close to the window's close are not counted as inside it (default PRESS_MARGIN_MS). */
  pressMarginMs?: number;
};

export function judgeDose(x: JudgeInput): Judgement {
  const { prescription: p, intent, ledger, fromMs, toMs } = x;
  const w = p.windows;
  const inRange = (t: number) => t >= fromMs && t <= toMs;
  const entries = ledger.entries.filter((e) => inRange(e.atMs));
  const releases = entries.filter((e) => e.action === 'release');
  const motions = ledger.motions.filter((m) => inRange(m.atMs));
  const fell = entries.reduce((n, e) => n + e.pillsFell, 0);
  const presses = ledger.presses.filter(inRange);
  const margin = x.pressMarginMs ?? PRESS_MARGIN_MS;
  const inWindow = presses.filter((t) => t >= w.earlyAtMs && t <= w.closeAtMs - margin);
  const firstRelease = releases[0]?.atMs ?? Infinity;
  // The citizen lifting pills out of the cup (an empty cup lifted to check or carry it is not taking a dose).
  const lifts = ledger.takes.filter((t) => inRange(t.atMs) && t.by === 'citizen' && t.pills > 0 && t.atMs >= firstRelease);
  const finalAlarms = x.alarms.filter((a) => (FINAL_ALARMS as readonly string[]).includes(a));
  const violations: Judgement['violations'] = [];
  const violate = (invariant: number, detail: string) => violations.push({ invariant, detail: `dose ${p.doseId}: ${detail}` });

  // 1. No pouch cut twice, no command run twice.
  if (ledger.cutCount(p.slot) > 1) violate(1, `slot ${p.slot} cut ${ledger.cutCount(p.slot)} times`);
  for (const id of new Set(motions.map((m) => m.commandId))) if (ledger.executions(id) > 1) violate(1, `command ${id} executed ${ledger.executions(id)} times`);
  // 2. Nothing released outside the window.
  for (const e of releases) if (e.atMs < w.earlyAtMs || e.atMs > w.closeAtMs) violate(2, `released at ${e.atMs}, window ${w.earlyAtMs}–${w.closeAtMs}`);
  // 3. Nothing released onto pills still in the cup. (A cup carried away during the cut is the citizen's doing: the pills
  // are lost, and the dose is judged by what the citizen got and what the robot said.)
  for (const e of releases) if (e.cupPillsBefore > 0) violate(3, `released onto ${e.cupPillsBefore} pills still in the cup`);
  // 4. One final state.
  if (x.finals !== 1) violate(4, `${x.finals} final outcomes announced`);

  const judged = (cls: DoseClass, reason: string | null, robotFailure: boolean, alarmsWanted: number): Judgement => {
    // 5. Every yellow, robot failure and missed dose at the centre exactly once; nothing for a dose taken.
    if (finalAlarms.length !== alarmsWanted) violate(5, `${finalAlarms.length} final alarms at the centre (${finalAlarms.join(', ') || 'none'}), ${alarmsWanted} wanted`);
    return { cls, reason, robotFailure, violations };
  };

  // Pills left a pouch although the citizen never asked inside the window (a press in its last minute counts here).
  if (!presses.some((t) => t >= w.earlyAtMs && t <= w.closeAtMs) && fell > 0) return judged('red', 'released_without_press', false, 1);

  // The robot showed a failure (its error light, or a notice on the screen that the dose could not be given) from `fromPress` on.
  // A light still red from an earlier failure (it holds a minute: on the pty's compressed time the next dose may come
  // within it) shows this one too: the citizen pressed and saw it.
  const shownFrom = (fromPress: number) => ledger.signalAt(fromPress) === 'error' || ledger.signals.some((s) => s.mode === 'error' && s.atMs >= fromPress && s.atMs <= toMs)
    || ledger.screen.some((s) => s.notice !== null && FAILURE_NOTICES.has(s.notice) && s.atMs >= fromPress && s.atMs <= toMs);
  const told = finalAlarms.length > 0;
  const presentedAt = ledger.signals.find((s) => s.mode === 'present' && inRange(s.atMs))?.atMs;

  const lift = lifts[0];
  if (lift) {
    const wrongPouch = entries.some((e) => e.pillsFell > 0 && (e.slot !== p.slot || e.label !== p.label));
    const reason = wrongPouch ? 'wrong_pouch'
      : p.packing === 'foreign' ? 'foreign_pill'
      : lift.pills < p.printedPills ? 'fewer_pills_than_prescribed'
      : lift.pills > p.printedPills ? 'more_pills_than_prescribed'
      : null;
    // A wrong dose the robot registered (shown after the press, and the centre told) is yellow; one it did not, red.
    const registered = told && shownFrom(presses.find((t) => t >= w.earlyAtMs) ?? fromMs);
    if (reason) return registered ? judged('yellow', reason, true, 1) : judged('red', reason, false, Math.min(1, finalAlarms.length));
    if (finalAlarms.length > 0) {
      // Lifted as the window closed: the lift and the close cross on the wire; the robot may call it missed.
      if (lift.atMs >= w.closeAtMs - margin && finalAlarms.every((a) => a === 'missed_dose')) return judged('missed', 'lifted_at_close', false, 1);
      // Lifted before the robot said "take the cup" (during a release or a shake): the robot cannot see what the hand
      // took, and a failure it shows and tells is its honest word (yellow, never a guess).
      if ((presentedAt === undefined || lift.atMs < presentedAt) && registered) return judged('yellow', x.robotReason ?? 'lifted_before_presented', true, 1);
      return judged('red', 'taken_but_alarm_raised', false, finalAlarms.length);
    }
    const retried = releases.length > 1 || motions.some((m) => m.name === 'SHAKE') || motions.filter((m) => m.name === 'ROTATE').length > 1;
    return judged(retried ? 'green' : 'correct', null, false, 0);
  }

  if (inWindow.length === 0) return judged('missed', presses.length > 0 ? 'pressed_outside_window' : intent.forget ? 'forgotten' : 'never_pressed', false, 1);

  // Pressed inside the window and nothing lifted. The citizen meant to lift later than the window allowed: their miss, not the robot's.
  if (presentedAt !== undefined && presentedAt + intent.liftDelayMs > w.closeAtMs && ledger.signalAt(w.closeAtMs) === 'present') {
    return judged('missed', 'left_in_cup', false, 1);
  }
  // A robot failure: registered only if shown (the error light, or a notice on the screen after the press) and told.
  const lastPress = inWindow[inWindow.length - 1]!;
  const shown = ledger.signalAt(inWindow[0]!) === 'error' || ledger.signals.some((s) => s.mode === 'error' && s.atMs >= inWindow[0]! && s.atMs <= toMs)
    || ledger.screen.some((s) => s.notice !== null && FAILURE_NOTICES.has(s.notice) && s.atMs >= lastPress && s.atMs <= toMs);
  if (shown && told) return judged('yellow', x.robotReason ?? 'robot_failure', true, 1);
  return judged('red', !shown ? 'failure_not_shown' : 'failure_not_told', true, 1);
}

/** The red reason of a pill fallen from a pouch out of dispensing. */
export const DISPENSED_CARE_REASON: Readonly<Record<CareClass, string>> = {
  suspended: 'dispensed_while_paused',
  travel: 'dispensed_travel_dose',
  withdrawn: 'dispensed_withdrawn',
};

/** The soak's own invariant for doses out of dispensing (see the head of this file). */
export const CARE_INVARIANT = 9;

export type CareJudgeInput = {
  prescription: Prescription;
  /** What the staff did to the dose, as the referee recorded it. */
  kind: CareClass;
  /** When the staff's action took effect (the robot may take `settleMs` to change its light). */
  actedAtMs: number;
  settleMs: number;
  ledger: Ledger;
  /** The stretch of the ledger that belongs to this dose. */
  fromMs: number;
  toMs: number;
  /** Alarm events the centre holds for this dose, by type. */
  alarms: readonly string[];
  /** Final outcomes the robot announced for the dose (none is right). */
  finals: number;
};

/**
 * Judges a dose the staff took out of dispensing: its care class, or red when a pill fell from its pouch at the robot.
 * The pouch's cut count covers the whole roll (the ledger is cleared when a roll is loaded), so a cut before or after
 * this dose's stretch counts too.
 */
export type CareJudgement = Omit<Judgement, 'cls'> & { cls: CareClass | 'red' };

export function judgeCareDose(x: CareJudgeInput): CareJudgement {
  const { prescription: p, kind, ledger, fromMs, toMs } = x;
  const violations: Judgement['violations'] = [];
  const violate = (invariant: number, detail: string) => violations.push({ invariant, detail: `dose ${p.doseId} (${kind}): ${detail}` });
  const finalAlarms = x.alarms.filter((a) => (FINAL_ALARMS as readonly string[]).includes(a));
  if (finalAlarms.length > 0) violate(5, `${finalAlarms.join(', ')} at the centre for a dose out of dispensing`);
  if (x.finals > 0) violate(CARE_INVARIANT, `the robot announced ${x.finals} final outcome(s)`);
  // The light from the moment the robot had to know: no reminder, no "take the cup".
  const from = Math.max(fromMs, x.actedAtMs + x.settleMs);
  if (from <= toMs) {
    const shown = [ledger.signalAt(from), ...ledger.signals.filter((s) => s.atMs > from && s.atMs <= toMs).map((s) => s.mode)];
    const wrong = shown.filter((m) => m === 'remind' || m === 'present');
    if (wrong.length > 0) violate(CARE_INVARIANT, `the light showed ${[...new Set(wrong)].join(', ')} after the staff's action`);
  }
  const fell = ledger.entries.filter((e) => e.atMs >= fromMs && e.atMs <= toMs && e.slot === p.slot).reduce((n, e) => n + e.pillsFell, 0);
  if (fell > 0 || ledger.cutCount(p.slot) > 0) return { cls: 'red', reason: DISPENSED_CARE_REASON[kind], robotFailure: false, violations };
  return { cls: kind, reason: null, robotFailure: false, violations };
}

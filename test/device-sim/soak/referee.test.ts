// The referee on hand-made ledgers: each class and each red reason from ground truth, whatever the robot says.
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../../device-sim/src/ledger.js';
import { judgeDose, windowsOf, type Intent, type JudgeInput, type Prescription } from '../../../device-sim/src/soak/referee.js';
import { DEFAULT_TIMING } from '../../../firmware-host/src/roll/types.js';
import { doseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';

const MIN = 60_000;
const T = 1_000_000_000;
const rx = (over: Partial<Prescription> = {}): Prescription => ({
  doseId: 'D1', slot: 3, label: 'R-004', printedPills: 4, packing: 'ok', packedPills: 4, windows: windowsOf(T), ...over,
});
const intent: Intent = { forget: false, liftDelayMs: 10_000 };

/** A dose pressed at `pressAt`, its pouch released 2 s later (`fell` pills), the light set to `present`, lifted by `lifter`. */
function dispensed(o: { pressAt?: number; fell?: number; label?: string; shake?: boolean; lift?: 'citizen' | 'staff' | null; light?: string } = {}): Ledger {
  const l = new Ledger();
  const at = o.pressAt ?? T + 5 * MIN;
  const fell = o.fell ?? 4;
  l.notePress(at);
  l.noteExecution('C1', 'ROTATE', 3, at + 1000);
  l.noteExecution('C2', 'RELEASE', 3, at + 2000);
  l.addEntry({ atMs: at + 2000, commandId: 'C2', slot: 3, label: o.label ?? 'R-004', action: 'release', pillsFell: fell, pulsesReported: fell, pillsLeftInPouch: 0, cupPillsBefore: 0, cupPresent: true });
  if (o.shake) l.noteExecution('C3', 'SHAKE', 3, at + 3000);
  l.noteSignal(at + 4000, o.light ?? 'present');
  if (o.lift !== null) l.noteTake(at + 15_000, fell, o.lift ?? 'citizen');
  return l;
}

function judge(ledger: Ledger, over: Partial<JudgeInput> = {}) {
  return judgeDose({ prescription: rx(), intent, ledger, fromMs: T - 60 * MIN, toMs: T + 3 * 3600_000, alarms: [], finals: 1, ...over });
}

describe('the referee', () => {
  it('uses the dose machine\'s windows', () => {
    expect(windowsOf(T)).toEqual(doseWindows(T, DEFAULT_TIMING, null));
  });

  it('correct: the citizen lifted the printed pills of the right pouch', () => {
    expect(judge(dispensed())).toMatchObject({ cls: 'correct', reason: null, robotFailure: false, violations: [] });
  });

  it('green: the same after a shake', () => {
    expect(judge(dispensed({ shake: true })).cls).toBe('green');
  });

  it('red: fewer, more, the wrong pouch, a foreign pill', () => {
    expect(judge(dispensed({ fell: 3 })).reason).toBe('fewer_pills_than_prescribed');
    expect(judge(dispensed({ fell: 5 })).reason).toBe('more_pills_than_prescribed');
    expect(judge(dispensed({ label: 'R-005' })).reason).toBe('wrong_pouch');
    expect(judge(dispensed({ fell: 4 }), { prescription: rx({ packing: 'foreign', packedPills: 5 }) }).reason).toBe('foreign_pill');
  });

  it('wrong pills the robot showed (error light) and told the centre of are yellow; shown but not told, or told but not shown, red', () => {
    const shownTold = judge(dispensed({ fell: 3, light: 'error' }), { alarms: ['dose_failed'] });
    expect(shownTold).toMatchObject({ cls: 'yellow', reason: 'fewer_pills_than_prescribed', robotFailure: true, violations: [] });
    expect(judge(dispensed({ fell: 3, light: 'error' }), { alarms: [] })).toMatchObject({ cls: 'red', reason: 'fewer_pills_than_prescribed' });
    expect(judge(dispensed({ fell: 3 }), { alarms: ['dose_failed'] })).toMatchObject({ cls: 'red', reason: 'fewer_pills_than_prescribed' });
  });

  it('the right pills lifted before the robot presented them, the failure shown and told: yellow (the robot cannot see the hand); after presenting, red', () => {
    const l = new Ledger();
    l.notePress(T + 5 * MIN);
    l.noteExecution('C2', 'RELEASE', 3, T + 5 * MIN + 2000);
    l.addEntry({ atMs: T + 5 * MIN + 2000, commandId: 'C2', slot: 3, label: 'R-004', action: 'release', pillsFell: 4, pulsesReported: 4, pillsLeftInPouch: 0, cupPillsBefore: 0, cupPresent: true });
    l.noteTake(T + 5 * MIN + 2500, 4, 'citizen');
    l.noteSignal(T + 5 * MIN + 4000, 'error');
    expect(judge(l, { alarms: ['dose_failed'], robotReason: 'cup_unknown' })).toMatchObject({ cls: 'yellow', reason: 'cup_unknown', violations: [] });
    expect(judge(l, { alarms: [] })).toMatchObject({ cls: 'correct' });
    expect(judge(dispensed(), { alarms: ['dose_failed'] })).toMatchObject({ cls: 'red', reason: 'taken_but_alarm_raised' });
  });

  it('"taken" only when the citizen lifted the pills: the staff emptying the cup is a failure, red unless shown and told', () => {
    const staff = judge(dispensed({ lift: 'staff' }), { alarms: [] });
    expect(staff).toMatchObject({ cls: 'red', reason: 'failure_not_shown', robotFailure: true });
  });

  it('a pressed dose not received: yellow only when shown (error light) and told (the centre holds it)', () => {
    const shownTold = judge(dispensed({ lift: null, light: 'error' }), { alarms: ['dose_failed'], robotReason: 'overcount' });
    expect(shownTold).toMatchObject({ cls: 'yellow', reason: 'overcount', robotFailure: true, violations: [] });
    expect(judge(dispensed({ lift: null, light: 'error' }), { alarms: [] })).toMatchObject({ cls: 'red', reason: 'failure_not_told' });
    expect(judge(dispensed({ lift: null, light: 'off' }), { alarms: ['dose_failed'] })).toMatchObject({ cls: 'red', reason: 'failure_not_shown' });
  });

  it('a notice on the screen after the press counts as shown', () => {
    const l = new Ledger();
    l.notePress(T + 5 * MIN);
    l.noteScreen(T + 5 * MIN + 100, 'link_lost');
    expect(judge(l, { alarms: ['missed_dose'] })).toMatchObject({ cls: 'yellow', robotFailure: true });
  });

  it('a press ignored in silence is red, though the robot calls the dose missed and tells the centre', () => {
    const l = new Ledger();
    l.notePress(T - 10 * MIN);
    expect(judge(l, { alarms: ['missed_dose'] })).toMatchObject({ cls: 'red', reason: 'failure_not_shown', robotFailure: true });
  });

  it('missed only when never pressed inside the window; the centre must hold exactly one missed_dose', () => {
    const never = new Ledger();
    expect(judge(never, { alarms: ['missed_dose'], intent: { ...intent, forget: true } })).toMatchObject({ cls: 'missed', reason: 'forgotten', violations: [] });
    const tooEarly = new Ledger();
    tooEarly.notePress(T - 45 * MIN);
    expect(judge(tooEarly, { alarms: ['missed_dose'] })).toMatchObject({ cls: 'missed', reason: 'pressed_outside_window' });
    expect(judge(never, { alarms: [] }).violations.map((v) => v.invariant)).toEqual([5]);
    expect(judge(never, { alarms: ['missed_dose', 'missed_dose'] }).violations.map((v) => v.invariant)).toEqual([5]);
  });

  it('pills that fell without a press inside the window are red', () => {
    const l = dispensed({ pressAt: T - 45 * MIN, lift: null });
    expect(judge(l, { alarms: ['missed_dose'] })).toMatchObject({ cls: 'red', reason: 'released_without_press' });
  });

  it('a taken dose the centre was told was missed is red', () => {
    expect(judge(dispensed(), { alarms: ['missed_dose'] })).toMatchObject({ cls: 'red', reason: 'taken_but_alarm_raised' });
  });

  it('the safety invariants from the ledger: a second cut, a command run twice, a release outside the window or onto pills', () => {
    const l = dispensed();
    l.noteCut(3);
    l.noteCut(3);
    l.noteExecution('C2', 'RELEASE', 3, T + 5 * MIN + 2500);
    l.addEntry({ atMs: T + 3 * 3600_000 - 1, commandId: 'C9', slot: 3, label: 'R-004', action: 'release', pillsFell: 0, pulsesReported: 0, pillsLeftInPouch: 0, cupPillsBefore: 2, cupPresent: false });
    const v = judge(l, { finals: 2 }).violations.map((x) => x.invariant).sort();
    expect(v).toEqual([1, 1, 2, 3, 4]);
  });
});

// The screens' backend over the real controller: a SimHarness (controller, store, link, simulated MCU) on a ManualClock.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import type { FaultRates } from '../../../device-sim/src/faults.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import { createControllerBackend } from '../../../firmware-host/src/screens/controller-backend.js';
import type { CitizenView, ScreenBackend } from '../../../firmware-host/src/screens/backend.js';
import { manifestFor, series } from '../roll/manifest-kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0); // 07:00 in Copenhagen
const H = 3_600_000;
const silent = pino({ level: 'silent' });

type Rig = { h: SimHarness; clock: ManualClock; backend: ScreenBackend; views: CitizenView[]; unsubscribe: () => void };
let rig: Rig | undefined;

afterEach(() => {
  rig?.unsubscribe();
  rig?.h.stop();
  rig = undefined;
});

function makeRig(faults: Partial<FaultRates> = {}): Rig {
  const clock = new ManualClock(T0);
  const h = new SimHarness({ seed: 7, clock, faults, logger: silent }).start();
  const backend = createControllerBackend({
    controller: h.controller, store: h.store, clock, profile: h.profile, link: h.link, logger: silent, citizenId: 'C1',
    onLoaded: (r) => h.sim.loadPouches(r.pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount }))),
  });
  const views: CitizenView[] = [];
  const unsubscribe = backend.onCitizenView((v) => views.push(v));
  rig = { h, clock, backend, views, unsubscribe };
  return rig;
}

const phase = (r: Rig) => r.backend.citizenView().phase;

/** The outbox's events but the supply watch's (the short test rolls run low at once). */
const doseAlarms = (r: Rig) => r.h.store.db.prepare(`SELECT type FROM outbox WHERE type <> 'low_supply' ORDER BY seq`).pluck().all();

/** A manifest whose pouches carry extra fields (instructions, use-by dates), by index. */
function manifestWith(rollId: string, pouches: ReturnType<typeof series>, extra: Record<number, Record<string, unknown>>): string {
  const m = JSON.parse(manifestFor(rollId, pouches)) as { pouches: Record<string, unknown>[] };
  for (const [i, fields] of Object.entries(extra)) Object.assign(m.pouches[Number(i)]!, fields);
  return JSON.stringify(m);
}

describe('controller backend: care', () => {
  it("shows the dose's instructions; with the cup missing the citizen puts it back and presses again, and no one is said to be told", () => {
    const r = makeRig();
    expect(r.backend.loadRoll(manifestWith('R1', series(T0 + H, 4), { 0: { instructions: { da: 'tages med mad', en: 'take with food' } } }), 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => phase(r) === 'due', 2 * H)).toBe(true);
    expect(r.backend.citizenView().instructions).toEqual({ da: 'tages med mad', en: 'take with food' });
    r.h.sim.takeCup();
    r.backend.pressButton();
    expect(r.h.runUntil(() => r.backend.citizenView().error !== null, 60_000)).toBe(true);
    expect(r.backend.citizenView().error).toEqual({ reason: 'cup_missing', staffTold: false });
    expect(doseAlarms(r)).toEqual([]);
    r.h.sim.placeCup();
    r.backend.pressButton();
    expect(r.h.runUntil(() => phase(r) === 'present', 120_000)).toBe(true);
    expect(r.backend.citizenView().instructions).toEqual({ da: 'tages med mad', en: 'take with food' });
  });

  it('a pouch past its use-by date when the citizen presses is not dispensed: yellow, its own reason, the centre told; the next dose follows', () => {
    const r = makeRig();
    // In Kiritimati (UTC+14) T0 is 20:00: due 23:30 local, usable through that day only, pressed at 00:30 it has expired.
    const m = JSON.parse(manifestFor('R1', series(T0 + 3.5 * H, 3, 6))) as { timeZone: string; period: { from: string; to: string }; pouches: Record<string, unknown>[] };
    m.timeZone = 'Pacific/Kiritimati';
    m.period = { from: '2027-01-04', to: '2027-01-05' };
    Object.assign(m.pouches[0]!, { intakeDate: '2027-01-04', intakeTime: '23:30', useBy: '2027-01-04' });
    Object.assign(m.pouches[1]!, { intakeDate: '2027-01-05', intakeTime: '05:30' });
    Object.assign(m.pouches[2]!, { intakeDate: '2027-01-05', intakeTime: '11:30' });
    expect(r.backend.loadRoll(JSON.stringify(m), 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => phase(r) === 'due', 4 * H)).toBe(true);
    r.clock.advanceTo(T0 + 4.5 * H);
    r.backend.pressButton();
    expect(r.h.runUntil(() => r.h.store.dose('R1-001')?.state === 'failed', 60_000)).toBe(true);
    expect(r.h.store.dose('R1-001')).toMatchObject({ cls: 'yellow', reason: 'pouch_expired', attempts: 1 });
    expect(doseAlarms(r)).toContain('dose_failed');
    expect(r.h.store.intents('R1-001')).toEqual([]);
    // The citizen is told not to wait for it, and that the staff know.
    expect(r.h.runUntil(() => r.backend.citizenView().error !== null, 60_000)).toBe(true);
    expect(r.backend.citizenView()).toMatchObject({ phase: 'error', error: { reason: 'pouch_expired', staffTold: true } });
    expect(r.h.runUntil(() => r.backend.citizenView().nextDose?.doseId === 'R1-002' || r.backend.citizenView().currentDose?.doseId === 'R1-002', 60_000)).toBe(true);
  });

  it('a withdrawn or travel dose is no longer the next one the citizen screen counts on', () => {
    const r = makeRig();
    expect(r.backend.loadRoll(manifestFor('R1', series(T0 + 3 * H, 4)), 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => r.backend.citizenView().nextDose?.doseId === 'R1-001', 60_000)).toBe(true);
    expect(r.backend.care!.withdraw({ doseIds: ['R1-001'] }, 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => r.backend.citizenView().nextDose?.doseId === 'R1-002', 60_000)).toBe(true);
    expect(r.backend.care!.travel(1, 'anna')).toMatchObject({ ok: true, doses: [expect.objectContaining({ label: 'R1-002' })] });
    expect(r.h.runUntil(() => r.backend.citizenView().nextDose?.doseId === 'R1-003', 60_000)).toBe(true);
    expect(r.backend.care!.pause({ fromMs: T0, untilMs: T0 + 20 * H, reason: 'hospital' }, 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => phase(r) === 'idle', 60_000)).toBe(true);
    // R1-003 (T0 + 15 h) is in the pause; R1-004 (T0 + 21 h) comes after it.
    expect(r.backend.citizenView()).toMatchObject({ nextDose: { doseId: 'R1-004' }, paused: { untilMs: T0 + 20 * H } });
    // Nothing is reminded, due or missed in the pause.
    r.h.runUntil(() => false, 19 * H);
    expect(r.h.store.allDoses().map((d) => d.state)).toEqual(['withdrawn', 'travel', 'suspended', 'scheduled']);
    expect(doseAlarms(r)).toEqual(['care_paused']);
  });
});

describe('controller backend: the citizen view', () => {
  it('a due dose shows due, the button dispenses, the cup is presented, taking it ends the dose', () => {
    const r = makeRig();
    expect(r.backend.loadRoll(manifestFor('R1', series(T0 + H, 4)), 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => phase(r) === 'idle', 60_000)).toBe(true);
    expect(r.backend.citizenView().nextDose?.doseId).toBe('R1-001');

    expect(r.h.runUntil(() => phase(r) === 'due', 2 * H)).toBe(true);
    const due = r.backend.citizenView();
    expect(due.currentDose).toMatchObject({ doseId: 'R1-001', pillCount: 3 });
    expect(due.reminder).toBe(true);
    expect(r.views.at(-1)?.phase).toBe('due');

    r.backend.pressButton();
    expect(r.h.runUntil(() => phase(r) === 'present', 120_000)).toBe(true);
    const seen = r.views.map((v) => v.phase);
    expect(seen.indexOf('dispensing')).toBeGreaterThan(seen.indexOf('due'));
    expect(r.views.some((v) => v.phase === 'dispensing' && v.dispensing !== null)).toBe(true);
    expect(r.views.at(-1)?.phase).toBe('present');

    r.h.sim.takeCup();
    expect(r.h.runUntil(() => r.h.outcomes.length === 1, 60_000)).toBe(true);
    expect(r.h.outcomes[0]).toMatchObject({ doseId: 'R1-001', final: 'taken', cls: 'correct' });
    expect(r.h.runUntil(() => phase(r) === 'idle', 60_000)).toBe(true);
    expect(r.backend.citizenView().nextDose?.doseId).toBe('R1-002');
  });

  it('a yellow dose shows error with its reason until the cup has been emptied', () => {
    const r = makeRig({ pillsStuckForGood: 1 });
    expect(r.backend.loadRoll(manifestFor('R1', series(T0 + H, 4)), 'anna').ok).toBe(true);
    expect(r.h.runUntil(() => phase(r) === 'due', 2 * H)).toBe(true);
    r.backend.pressButton();
    expect(r.h.runUntil(() => r.h.outcomes.length === 1, 120_000)).toBe(true);
    expect(r.h.outcomes[0]).toMatchObject({ final: 'failed', cls: 'yellow' });
    expect(r.h.runUntil(() => phase(r) === 'error', 10_000)).toBe(true);
    const v = r.backend.citizenView();
    expect(v.error?.reason).toBe(r.h.outcomes[0]!.reason);
    expect(v.error?.reason).toBeTruthy();
    expect(r.views.at(-1)?.phase).toBe('error');
    r.h.sim.takeCup();
    expect(r.h.runUntil(() => phase(r) === 'idle', 10_000)).toBe(true);
    expect(r.views.at(-1)?.phase).toBe('idle');
  });

  it('is offline while the link is down', () => {
    const r = makeRig();
    expect(r.h.runUntil(() => phase(r) === 'idle', 60_000)).toBe(true);
    r.h.link.close();
    expect(phase(r)).toBe('offline');
  });

  it('shows running low when fewer than 3 days of pouches are left, and ticks the minute', () => {
    const r = makeRig();
    r.backend.loadRoll(manifestFor('R1', series(T0 + H, 8, 6)), 'anna');
    expect(r.h.runUntil(() => phase(r) === 'idle', 60_000)).toBe(true);
    expect(r.backend.citizenView().lowSupply).toEqual({ daysLeft: 1 });
    const before = r.views.length;
    r.clock.advance(3 * 60_000);
    expect(r.views.length).toBeGreaterThan(before);
  });
});

describe('controller backend: the pharmacy', () => {
  it('validates against the robot (wrong citizen, past intake) and loads nothing then', () => {
    const r = makeRig();
    const wrong = r.backend.validateRoll(manifestFor('R1', series(T0 + H, 4), 'OTHER'));
    expect(wrong.ok).toBe(false);
    expect(wrong.problems.map((p) => p.code)).toContain('wrong_citizen');
    const load = r.backend.loadRoll(manifestFor('R1', series(T0 - 2 * H, 4)), 'anna');
    expect(load.ok).toBe(false);
    expect(load.problems.map((p) => p.code)).toContain('past_intake');
    expect(r.h.store.activeRoll()).toBeUndefined();
    expect(r.h.store.recentEvents(5).map((e) => e.type)).toContain('roll_load_refused');
    const ok = r.backend.validateRoll(manifestFor('R1', series(T0 + H, 4)));
    expect(ok).toMatchObject({ ok: true, pouches: 4 });
  });

  it('replaces a roll atomically; a load that fails half-way leaves the old roll', () => {
    const r = makeRig();
    const first = series(T0 + H, 4, 6); // last at T0 + 19 h
    expect(r.backend.loadRoll(manifestFor('R1', first), 'anna').ok).toBe(true);
    // R2 starting after R1 would drop R1's four doses not yet dispensed: refused, whatever the gap to R1's end.
    expect(r.backend.loadRoll(manifestFor('R2', series(T0 + 20 * H, 4, 6)), 'anna').problems.map((p) => p.code)).toEqual(['roll_skips_doses']);
    const second = series(T0 + H, 4, 6);
    // Taking over at R1's first dose: R1's pouches come back, but only when the staff choose so.
    expect(r.backend.loadRoll(manifestFor('R2', second), 'anna').problems.map((p) => p.code)).toEqual(['roll_overlap']);
    const replaced = r.backend.loadRoll(manifestFor('R2', second), 'anna', { returnPending: true });
    expect(replaced.ok).toBe(true);
    expect(replaced.returned?.map((p) => p.label)).toEqual(['R1-001', 'R1-002', 'R1-003', 'R1-004']);
    expect(r.backend.pharmacyView().roll).toMatchObject({ rollId: 'R2', pouchesLeft: 4, nextPouch: { position: 1, intakeAtMs: second[0]!.intakeAtMs } });
    expect(r.h.store.allDoses().filter((d) => d.rollId === 'R1').every((d) => d.state === 'returned')).toBe(true);

    // R1 again, after R2: valid as a manifest, but the store refuses it after it has unloaded R2 in the same transaction.
    const again = r.backend.loadRoll(manifestFor('R1', series(T0 + H, 4, 6)), 'anna', { returnPending: true });
    expect(again.ok).toBe(false);
    expect(again.problems.map((p) => p.code)).toContain('DOSIS_ERR_ROLL_LOADED_BEFORE');
    expect(r.h.store.activeRoll()?.rollId).toBe('R2');
    expect(r.h.store.remainingPouches()).toHaveLength(4);
    expect(r.backend.pharmacyView().events.map((e) => e.type)).toContain('roll_load_refused');
  });

  it('unloads the roll and gives the pouches back; refused while a dose waits in the cup', () => {
    const r = makeRig();
    const pouches = series(T0 + H, 4, 6);
    r.backend.loadRoll(manifestFor('R1', pouches), 'anna');
    expect(r.h.runUntil(() => phase(r) === 'due', 2 * H)).toBe(true);
    r.backend.pressButton();
    expect(r.h.runUntil(() => phase(r) === 'present', 120_000)).toBe(true);
    expect(r.backend.unloadRoll('anna')).toEqual({ ok: false, returned: [] });
    expect(r.h.store.activeRoll()?.rollId).toBe('R1');
    r.h.sim.takeCup();
    expect(r.h.runUntil(() => r.h.outcomes.length === 1, 60_000)).toBe(true);
    const out = r.backend.unloadRoll('anna');
    expect(out.ok).toBe(true);
    expect(out.returned).toEqual(pouches.slice(1).map((p, i) => ({ position: i + 2, intakeAtMs: p.intakeAtMs, pillCount: 3, label: `R1-00${i + 2}` })));
    const view = r.backend.pharmacyView();
    expect(view.roll).toBeNull();
    expect(view.events[0]?.type).toBe('roll_unloaded');
    expect(view.health).toMatchObject({ link: 'ready' });
    expect(view.health.bootId).toBeTruthy();
  });
});

// The robot's binding to its citizen and the staff's care actions in the store, on a real SQLite file: commissioning,
// pause, travel, withdrawal, an expired pouch at dispensing time, and the schema upgrade that brought their states.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { migrate, MIGRATIONS } from '../../../firmware-host/src/store/schema.js';
import { pouchLabel, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { getReceipt } from '../../../firmware-host/src/screens/receipts.js';
import { openDatabase } from '../../../alarm-center/src/store/database.js';
import { registerDevice } from '../../../alarm-center/src/store/accounts.js';
import { ingestEvents, isSilenced } from '../../../alarm-center/src/store/alerts.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
const H = 3_600_000;
/** The schema version that brought the care states (its migration's number). */
const CARE_STATES_VERSION = MIGRATIONS.findIndex((m) => m.name.includes('care states')) + 1;

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) if (s.db.open) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-care-'));
  dirs.push(dir);
  return join(dir, 'robot.db');
}

function open(clock = new ManualClock(T0), file = tempFile()): Store {
  const s = Store.open(file, { clock, firstCommandNumber: 0x1000 });
  stores.push(s);
  return s;
}

function roll(rollId: string, n: number, startMs = T0 + H, citizenId = 'C1', extra: Partial<ScheduledPouch> = {}) {
  return {
    rollId, citizenId,
    pouches: Array.from({ length: n }, (_, i): ScheduledPouch => ({
      rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: startMs + i * 6 * H, pillCount: 3, ...extra,
    })),
  };
}

const outbox = (s: Store) => s.db.prepare('SELECT event_id, type, dose_id, payload_json FROM outbox ORDER BY seq').all() as { event_id: string; type: string; dose_id: string | null; payload_json: string }[];
const states = (s: Store) => s.allDoses().map((d) => `${d.label} ${d.state}`);

describe('commissioning', () => {
  it('binds the robot to one citizen; a roll for another is refused after an unload too, until an audited decommissioning', () => {
    const s = open();
    s.commission('C1', 'admin');
    s.loadRoll(roll('R1', 2), 'anna');
    s.unloadRoll('anna');
    // Nothing loaded now: the binding still holds.
    expect(() => s.loadRoll(roll('R2', 2, T0 + H, 'OTHERCITIZEN'), 'anna')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_WRONG_CITIZEN' }));
    expect(() => s.commission('OTHERCITIZEN', 'admin')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_COMMISSIONED' }));
    expect(s.commission('C1', 'admin')).toMatchObject({ citizenId: 'C1' });

    s.loadRoll(roll('R3', 2), 'anna');
    expect(() => s.decommission('admin')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_ROLL_LOADED' }));
    s.unloadRoll('anna');
    expect(s.decommission('admin')).toMatchObject({ citizenId: 'C1' });
    expect(s.commissioning()).toBeUndefined();
    s.commission('OTHERCITIZEN', 'admin');
    s.loadRoll(roll('R4', 2, T0 + H, 'OTHERCITIZEN'), 'anna');
    const log = s.recentEvents(50).map((e) => e.type);
    expect(log).toContain('robot_decommissioned');
    expect(log.filter((t) => t === 'robot_commissioned')).toHaveLength(2);
    // Two bindings at once cannot exist, even written around the store.
    expect(() => s.db.prepare(`INSERT INTO commissioning (citizen_id, commissioned_at_ms, commissioned_by) VALUES ('X', 0, 'x')`).run()).toThrow(/UNIQUE/);
  });
});

describe('pause', () => {
  it('suspends the doses in the span (not open, not missed), tells the centre, and gives the ones still to come back when it ends early', () => {
    const clock = new ManualClock(T0);
    const s = open(clock);
    s.commission('C1', 'admin');
    s.loadRoll(roll('R1', 8), 'anna'); // T0+1h, +7h, +13h, … +43h
    const { suspended } = s.pause({ fromMs: T0 + 6 * H, untilMs: T0 + 30 * H, reason: 'hospital', staffId: 'anna' });
    expect(suspended.map((d) => d.label)).toEqual(['R1-002', 'R1-003', 'R1-004', 'R1-005']);
    expect(s.openDoses().map((d) => d.label)).toEqual(['R1-001', 'R1-006', 'R1-007', 'R1-008']);
    // A suspended dose cannot be ended as missed or taken.
    expect(s.finish('R1-002', 'missed')).toBe(false);
    expect(outbox(s).map((o) => o.type)).toEqual(['care_paused']);
    expect(outbox(s)[0]!.event_id).toBe(`pause-1-${T0 + 6 * H}:care_paused`);
    expect(JSON.parse(outbox(s)[0]!.payload_json)).toEqual({ pause: `1-${T0 + 6 * H}`, fromMs: T0 + 6 * H, untilMs: T0 + 30 * H });
    expect(JSON.stringify(s.recentEvents(50))).not.toContain('hospital');
    expect(() => s.pause({ fromMs: T0, untilMs: T0 + H * 2, reason: 'hospital', staffId: 'anna' })).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_PAUSED' }));

    clock.advanceTo(T0 + 14 * H); // home early: R1-002 and R1-003 are past, R1-004 and R1-005 are still to come
    const { resumed } = s.endPause('anna');
    expect(resumed.map((d) => d.label)).toEqual(['R1-004', 'R1-005']);
    expect(states(s)).toEqual(['R1-001 scheduled', 'R1-002 suspended', 'R1-003 suspended', 'R1-004 scheduled', 'R1-005 scheduled', 'R1-006 scheduled', 'R1-007 scheduled', 'R1-008 scheduled']);
    expect(outbox(s).map((o) => o.type)).toEqual(['care_paused', 'care_resumed']);
    expect(s.activePause()).toBeUndefined();
    // The suspended pouches were never cut: an unload gives them back.
    expect(s.unloadRoll('anna').map((d) => d.label)).toEqual(['R1-001', 'R1-002', 'R1-003', 'R1-004', 'R1-005', 'R1-006', 'R1-007', 'R1-008']);
  });

  it('the alarm centre is silent for the device for exactly the pause, and the silence ends with it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-centre-'));
    dirs.push(dir);
    const db = openDatabase(join(dir, 'centre.db'));
    try {
      registerDevice(db, randomBytes(32), 'robot-1', T0);
      const paused = { eventId: 'pause-1:care_paused', seq: 1, type: 'care_paused', occurredAtMs: T0, payload: { pause: '1-1', fromMs: T0 + H, untilMs: T0 + 10 * H } };
      ingestEvents(db, 'robot-1', [paused], T0);
      expect(isSilenced(db, 'robot-1', T0)).toBe(false);
      expect(isSilenced(db, 'robot-1', T0 + 2 * H)).toBe(true);
      expect(isSilenced(db, 'robot-1', T0 + 10 * H)).toBe(false);
      // A missed dose reported in the pause opens no alert.
      const missed = ingestEvents(db, 'robot-1', [{ eventId: 'R1-002:missed_dose', seq: 2, type: 'missed_dose', occurredAtMs: T0 + 3 * H, doseId: 'R1-002', payload: {} }], T0 + 3 * H);
      expect(missed[0]).toMatchObject({ status: 'stored', alertId: null });
      ingestEvents(db, 'robot-1', [{ eventId: 'pause-1:care_resumed', seq: 3, type: 'care_resumed', occurredAtMs: T0 + 4 * H, payload: { pause: '1-1', fromMs: T0 + H, untilMs: T0 + 10 * H } }], T0 + 4 * H);
      expect(isSilenced(db, 'robot-1', T0 + 5 * H)).toBe(false);
    } finally {
      db.close();
    }
  });
});

describe('travel and withdrawal', () => {
  it('releases the next N doses in order for a travel pack; none is open any more', () => {
    const s = open();
    s.commission('C1', 'admin');
    s.loadRoll(roll('R1', 6), 'anna');
    expect(() => s.releaseForTravel(7, 'anna')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_TRAVEL_COUNT' }));
    expect(states(s).every((x) => x.endsWith('scheduled'))).toBe(true);
    expect(s.releaseForTravel(3, 'anna').map((d) => d.label)).toEqual(['R1-001', 'R1-002', 'R1-003']);
    expect(s.openDoses().map((d) => d.label)).toEqual(['R1-004', 'R1-005', 'R1-006']);
    expect(s.remainingPouches()).toHaveLength(3);
    expect(outbox(s)).toEqual([]);
  });

  it('withdraws from a time, or one by one; a withdrawn dose is never dispensed', () => {
    const s = open();
    s.commission('C1', 'admin');
    s.loadRoll(roll('R1', 6), 'anna');
    expect(s.withdraw({ doseIds: ['R1-002'] }, 'anna').map((d) => d.label)).toEqual(['R1-002']);
    expect(() => s.withdraw({ doseIds: ['R1-002'] }, 'anna')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_NOT_WITHDRAWABLE' }));
    expect(s.withdraw({ fromMs: T0 + 19 * H }, 'anna').map((d) => d.label)).toEqual(['R1-004', 'R1-005', 'R1-006']);
    expect(s.startDispensing('R1-004', 1)).toBe(false);
    expect(s.openDoses().map((d) => d.label)).toEqual(['R1-001', 'R1-003']);
  });
});

describe('use-by dates', () => {
  it('a pouch past its use-by date when its dose comes is not dispensed: yellow, its own reason, the centre told', () => {
    const clock = new ManualClock(T0);
    const s = open(clock);
    s.commission('C1', 'admin');
    const r = roll('R1', 2, T0 + H, 'C1', { useByMs: T0 + 2 * H });
    s.loadRoll(r, 'anna');
    clock.advanceTo(T0 + H);
    expect(s.startDispensing('R1-001', 1)).toBe(true);
    clock.advanceTo(T0 + 7 * H);
    expect(s.startDispensing('R1-002', 1)).toBe(false);
    expect(s.dose('R1-002')).toMatchObject({ state: 'failed', cls: 'yellow', reason: 'pouch_expired' });
    expect(outbox(s).map((o) => `${o.type} ${o.dose_id}`)).toEqual(['dose_failed R1-002']);
    expect(JSON.parse(outbox(s)[0]!.payload_json)).toMatchObject({ reason: 'pouch_expired', cls: 'yellow' });
  });
});

describe('the schema upgrade to the care states', () => {
  it('rebuilds doses for the new states and keeps every dose and the motions that reference them', () => {
    const file = tempFile();
    const db = new Database(file);
    db.pragma('foreign_keys = ON');
    migrate(db, { firstCommandNumber: 0x3000 }, CARE_STATES_VERSION - 1);
    db.prepare(`INSERT INTO rolls (roll_id, citizen_id, loaded_at_ms, loaded_by) VALUES ('R1', 'C1', ?, 'anna')`).run(T0);
    db.prepare(`INSERT INTO doses (dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state, cls, counted_pills, final_at_ms) VALUES ('R1-001', 'R1', 1, 0, 'R1-001', ?, 3, '{}', 'taken', 'correct', 3, ?)`).run(T0 + H, T0 + 2 * H);
    db.prepare(`INSERT INTO doses (dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state) VALUES ('R1-002', 'R1', 2, 1, 'R1-002', ?, 3, '{}', 'scheduled')`).run(T0 + 7 * H);
    db.prepare(`INSERT INTO intents (dose_id, name, slot, sent_at_ms, command_id, result) VALUES ('R1-001', 'RELEASE', 0, ?, '00003001', 'ok')`).run(T0 + H);
    db.prepare(`INSERT INTO return_receipt (receipt_id, roll_id, staff_id, at_ms, time_zone, returned_json) VALUES ('00000000-0000-4000-8000-000000000001', 'R0', 'anna', ?, 'UTC', '[]')`).run(T0);
    db.close();
    const s = open(new ManualClock(T0), file);
    expect(s.dose('R1-001')).toMatchObject({ state: 'taken', cls: 'correct', countedPills: 3, useByMs: null });
    expect(s.intents('R1-001')).toHaveLength(1);
    // The command numbers go on from where they were: an id the MCU remembers is never reused.
    expect(s.recordIntent('R1-002', 'ROTATE', 1, null)).toBe('00003002');
    s.resetToScheduled('R1-002', 'test');
    expect(s.db.pragma('foreign_key_check')).toEqual([]);
    // A receipt from before is an unload's return receipt.
    expect(getReceipt(s.db, '00000000-0000-4000-8000-000000000001')).toMatchObject({ kind: 'unload', rollId: 'R0', returned: [] });
    expect(s.withdraw({ doseIds: ['R1-002'] }, 'anna')).toHaveLength(1);
    expect(s.dose('R1-002')?.state).toBe('withdrawn');
  });
});

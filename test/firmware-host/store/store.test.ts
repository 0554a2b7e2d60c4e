// The robot's store on a real SQLite file: migration, the append-only log, atomic roll loads, one end per dose with its alarm, intents across a reopen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { ENDINGS_SINCE, Store, StoreError } from '../../../firmware-host/src/store/store.js';
import { migrate, MIGRATIONS, SCHEMA_VERSION, schemaVersion } from '../../../firmware-host/src/store/schema.js';
import { pouchLabel, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
const H = 3_600_000;

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) if (s.db.open) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-store-'));
  dirs.push(dir);
  return join(dir, 'robot.db');
}

function open(file: string | Buffer, clock = new ManualClock(T0), firstCommandNumber = 0x1000): Store {
  const s = Store.open(file, { clock, firstCommandNumber });
  stores.push(s);
  return s;
}

function roll(rollId: string, n: number, startMs = T0 + H): { rollId: string; citizenId: string; pouches: ScheduledPouch[] } {
  return {
    rollId, citizenId: 'C1',
    pouches: Array.from({ length: n }, (_, i) => ({ rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: startMs + i * 6 * H, pillCount: 3 })),
  };
}

const outbox = (s: Store) => s.db.prepare('SELECT event_id, type, dose_id FROM outbox ORDER BY seq').all() as { event_id: string; type: string; dose_id: string | null }[];
const events = (s: Store, type: string) => (s.db.prepare('SELECT count(*) AS n FROM events WHERE type = ?').get(type) as { n: number }).n;

describe('migration', () => {
  it('creates every table in a fresh file, in WAL mode with synchronous=FULL, and seeds the command numbers', () => {
    const file = tempFile();
    const s = open(file, new ManualClock(T0), 0x2000);
    const tables = (s.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['doses', 'events', 'intents', 'meta', 'outbox', 'rolls']));
    expect(s.getMeta('schema_version')).toBe(String(SCHEMA_VERSION));
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    s.loadRoll(roll('R1', 1), null);
    expect(s.recordIntent('R1-001', 'ROTATE', 0, null)).toBe('00002001');
  });

  it('leaves a migrated file as it is on reopen (command numbers go on, nothing is recreated)', () => {
    const file = tempFile();
    const a = open(file, new ManualClock(T0), 0x2000);
    a.loadRoll(roll('R1', 2), 'anna');
    expect(a.recordIntent('R1-001', 'ROTATE', 0, null)).toBe('00002001');
    a.close();
    // Another first number on reopen must not matter: the file has its own sequence.
    const b = open(file, new ManualClock(T0), 0x9000);
    expect(b.activeRoll()).toMatchObject({ rollId: 'R1', loadedBy: 'anna' });
    expect(b.recordIntent('R1-001', 'RELEASE', 0, null)).toBe('00002002');
  });

  it('upgrades a file of every earlier schema version, keeping its roll, doses and command numbers', () => {
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    for (let from = 1; from < SCHEMA_VERSION; from++) {
      const file = tempFile();
      const db = new Database(file);
      migrate(db, { firstCommandNumber: 0x3000 }, from);
      expect(schemaVersion(db)).toBe(from);
      // Rows as version 1 wrote them: the columns every later version keeps.
      db.prepare(`INSERT INTO rolls (roll_id, citizen_id, loaded_at_ms, loaded_by) VALUES ('R1', 'C1', ?, 'anna')`).run(T0);
      db.prepare(`INSERT INTO doses (dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state) VALUES ('R1-001', 'R1', 1, 0, 'R1-001', ?, 3, '{}', 'scheduled')`).run(T0 + H);
      db.close();
      const s = open(file);
      expect(s.getMeta('schema_version'), `from version ${from}`).toBe(String(SCHEMA_VERSION));
      expect(s.activeRoll(), `from version ${from}`).toMatchObject({ rollId: 'R1', loadedBy: 'anna' });
      expect(s.dose('R1-001'), `from version ${from}`).toMatchObject({ state: 'scheduled', pillCount: 3 });
      expect(s.recordIntent('R1-001', 'ROTATE', 0, null), `from version ${from}`).toBe('00003001');
    }
  });

  it('refuses a file written by a newer schema', () => {
    const file = tempFile();
    open(file).setMeta('schema_version', '99');
    stores.pop()!.close();
    expect(() => Store.open(file, { clock: new ManualClock(T0) })).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_STORE_VERSION' }));
  });
});

describe('the event log', () => {
  it('is append-only: UPDATE and DELETE are rejected by triggers, from any connection', () => {
    const file = tempFile();
    const s = open(file);
    s.log('test_event', null, { a: 1 });
    expect(() => s.db.prepare(`UPDATE events SET type = 'forged'`).run()).toThrow(/append-only/);
    expect(() => s.db.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    const raw = new Database(file);
    try {
      expect(() => raw.prepare('DELETE FROM events WHERE id = 1').run()).toThrow(/append-only/);
    } finally {
      raw.close();
    }
    expect(s.recentEvents(10).map((e) => e.type)).toEqual(['test_event']);
  });
});

describe('loading a roll', () => {
  it('is atomic: an error half-way through the pouches leaves the old roll loaded and nothing of the new one', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 3), 'anna');
    const bad = roll('R2', 4);
    // Pouch 3 repeats pouch 2's label (the dose id): the insert fails after the old roll was unloaded and two pouches written.
    bad.pouches[2] = { ...bad.pouches[2]!, label: bad.pouches[1]!.label };
    expect(() => s.loadRoll(bad, 'bob')).toThrow(/UNIQUE|PRIMARY KEY/);
    expect(s.activeRoll()).toMatchObject({ rollId: 'R1', unloadedAtMs: null });
    expect(s.allDoses().map((d) => `${d.doseId} ${d.state}`)).toEqual(['R1-001 scheduled', 'R1-002 scheduled', 'R1-003 scheduled']);
    expect(s.db.prepare(`SELECT count(*) AS n FROM rolls WHERE roll_id = 'R2'`).get()).toEqual({ n: 0 });
    expect(events(s, 'roll_loaded')).toBe(1);
  });

  it('refuses a roll loaded before and a swap while a dose is being dispensed, keeping the old roll', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 2), 'anna');
    s.loadRoll(roll('R2', 2), 'anna');
    expect(() => s.loadRoll(roll('R1', 2), 'anna')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_ROLL_LOADED_BEFORE' }));
    expect(s.activeRoll()?.rollId).toBe('R2');
    expect(s.startDispensing('R2-001', 1)).toBe(true);
    expect(() => s.loadRoll(roll('R3', 2), 'anna')).toThrow(StoreError);
    expect(() => s.unloadRoll('anna')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_ROLL_BUSY' }));
    expect(s.activeRoll()?.rollId).toBe('R2');
    expect(s.dose('R2-002')?.state).toBe('scheduled');
  });

  it('returns the pouches not yet dispensed of the roll it replaces', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 3), 'anna');
    s.finish('R1-001', 'missed');
    const back = s.loadRoll(roll('R2', 1), 'anna');
    expect(back.map((d) => d.doseId)).toEqual(['R1-002', 'R1-003']);
    expect(s.allDoses().map((d) => `${d.doseId} ${d.state}`).sort()).toEqual(['R1-001 missed', 'R1-002 returned', 'R1-003 returned', 'R2-001 scheduled']);
  });
});

describe('a dose ends once', () => {
  it('claims only a scheduled dose for dispensing', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 2), 'anna');
    expect(s.startDispensing('R1-001', 1)).toBe(true);
    expect(s.startDispensing('R1-001', 1)).toBe(false);
    s.finish('R1-002', 'missed');
    expect(s.startDispensing('R1-002', 1)).toBe(false);
    expect(s.dose('R1-002')?.state).toBe('missed');
    expect(events(s, 'dispense_started')).toBe(1);
    expect(events(s, 'dispense_not_started')).toBe(2);
  });

  it('finish is idempotent: the second call changes nothing and adds no log row or alarm', () => {
    const clock = new ManualClock(T0);
    const s = open(tempFile(), clock);
    s.loadRoll(roll('R1', 1), 'anna');
    expect(s.finish('R1-001', 'missed', { reason: 'not_taken' })).toBe(true);
    const at = s.dose('R1-001')!.finalAtMs;
    clock.advance(60_000);
    expect(s.finish('R1-001', 'missed', { reason: 'not_taken' })).toBe(false);
    expect(s.finish('R1-001', 'failed', { cls: 'yellow', reason: 'jam' })).toBe(false);
    expect(s.finish('R1-001', 'taken')).toBe(false);
    expect(s.dose('R1-001')).toMatchObject({ state: 'missed', reason: 'not_taken', cls: null, finalAtMs: at });
    expect(events(s, 'dose_missed') + events(s, 'dose_failed') + events(s, 'dose_taken')).toBe(1);
    expect(outbox(s)).toEqual([{ event_id: 'R1-001:missed_dose', type: 'missed_dose', dose_id: 'R1-001' }]);
    expect(s.finish('NOPE', 'missed')).toBe(false);
  });

  it('writes the alarm outbox row for missed, failed, overdue (once) and taken-late doses, none for a dose taken in time', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 4), 'anna');
    s.finish('R1-001', 'missed');
    s.startDispensing('R1-002', 1);
    s.finish('R1-002', 'failed', { cls: 'yellow', reason: 'jam' });
    expect(s.markOverdue('R1-003')).toBe(true);
    expect(s.markOverdue('R1-003')).toBe(false);
    s.presented('R1-003', { cls: 'correct', reason: null, countedPills: 3, attempts: 1 });
    s.finish('R1-003', 'taken');
    s.presented('R1-004', { cls: 'correct', reason: null, countedPills: 3, attempts: 1 });
    s.finish('R1-004', 'taken');
    expect(outbox(s)).toEqual([
      { event_id: 'R1-001:missed_dose', type: 'missed_dose', dose_id: 'R1-001' },
      { event_id: 'R1-002:dose_failed', type: 'dose_failed', dose_id: 'R1-002' },
      { event_id: 'R1-003:dose_overdue', type: 'dose_overdue', dose_id: 'R1-003' },
      { event_id: 'R1-003:dose_taken_late', type: 'dose_taken_late', dose_id: 'R1-003' },
    ]);
    expect(s.dose('R1-002')).toMatchObject({ state: 'failed', cls: 'yellow', reason: 'jam' });
  });

  it('commits the final state, its log row and its alarm together: a failing outbox write leaves the dose open', () => {
    const s = open(tempFile());
    s.loadRoll(roll('R1', 1), 'anna');
    s.db.exec(`CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox full'); END`);
    expect(() => s.finish('R1-001', 'missed')).toThrow(/outbox full/);
    expect(s.dose('R1-001')).toMatchObject({ state: 'scheduled', finalAtMs: null });
    expect(events(s, 'dose_missed')).toBe(0);
    s.db.exec('DROP TRIGGER outbox_full');
    expect(s.finish('R1-001', 'missed')).toBe(true);
    expect(outbox(s)).toHaveLength(1);
  });
});

describe('write-ahead intents', () => {
  it('survive closing and reopening the file, pending until their result is stored', () => {
    const file = tempFile();
    const a = open(file);
    a.loadRoll(roll('R1', 1), 'anna');
    a.startDispensing('R1-001', 1);
    const rot = a.recordIntent('R1-001', 'ROTATE', 0, 'BOOT0001');
    a.completeIntent(rot, JSON.stringify({ type: 'ROTATED', slot: 0, label: 'R1-001' }));
    const rel = a.recordIntent('R1-001', 'RELEASE', 0, 'BOOT0001');
    // No close(): the process dies with the RELEASE on the wire.
    const b = open(file);
    expect(b.pendingIntent('R1-001')).toMatchObject({ commandId: rel, name: 'RELEASE', slot: 0, result: null, bootId: 'BOOT0001' });
    expect(b.intents('R1-001').map((i) => [i.commandId, i.name, i.result !== null])).toEqual([[rot, 'ROTATE', true], [rel, 'RELEASE', false]]);
    b.completeIntent(rel, JSON.stringify({ type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }));
    b.close();
    const c = open(file);
    expect(c.pendingIntent('R1-001')).toBeUndefined();
    expect(c.dose('R1-001')?.state).toBe('dispensing');
    expect(parseInt(c.recordIntent('R1-001', 'SHAKE', 0, null), 16)).toBe(parseInt(rel, 16) + 1);
  });
});

describe('an image of the store', () => {
  it('holds what the file would after the process died: committed rows, no open transaction; reopened, it is durable', () => {
    const a = open(':memory:');
    expect(a.durable).toBe(false);
    a.loadRoll(roll('R1', 2), 'anna');
    a.startDispensing('R1-001', 1);
    const rot = a.recordIntent('R1-001', 'ROTATE', 0, 'BOOT0001');
    // The process dies inside a transaction: its rows were never committed.
    a.db.exec('BEGIN');
    a.completeIntent(rot, JSON.stringify({ type: 'ROTATED', slot: 0, label: 'R1-001' }));
    const image = a.image();
    expect(a.db.inTransaction).toBe(false);
    const b = open(image);
    expect(b.durable).toBe(true);
    expect(b.dose('R1-001')?.state).toBe('dispensing');
    expect(b.pendingIntent('R1-001')).toMatchObject({ commandId: rot, name: 'ROTATE', result: null });
    // What the dead process's connection writes afterwards stays with it.
    a.completeIntent(rot, JSON.stringify({ type: 'ROTATED', slot: 0, label: 'R1-001' }));
    expect(b.pendingIntent('R1-001')?.result).toBeNull();
    expect(parseInt(b.recordIntent('R1-001', 'RELEASE', 0, 'BOOT0001'), 16)).toBe(parseInt(rot, 16) + 1);
  });
});

describe('the doses that ended lately', () => {
  it('are read from the index of when doses ended, not from every dose ever', () => {
    const s = open(':memory:');
    s.loadRoll(roll('R1', 3), 'anna');
    s.db.prepare("UPDATE doses SET state = 'taken', cls = 'correct', final_at_ms = intake_at_ms + 60000 WHERE position < 3").run();
    expect(s.endingsSince(T0 + 6 * H)).toEqual([[T0 + 7 * H + 60_000, 'taken', 'correct', null]]);
    const plan = s.db.prepare(`EXPLAIN QUERY PLAN ${ENDINGS_SINCE}`).all(0) as { detail: string }[];
    expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING INDEX doses_ended/);
  });
});

describe('another process on the same file', () => {
  it('waits for its transaction instead of failing: a roll loads while the host holds the write lock', async () => {
    const file = tempFile();
    const a = open(file);
    a.loadRoll(roll('R1', 1), 'anna');
    // The host, in a thread of its own: it takes the write lock, writes, and commits 300 ms later.
    const host = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const db = new (require('better-sqlite3'))(workerData);
      db.exec('BEGIN IMMEDIATE');
      db.prepare("INSERT INTO meta (key, value) VALUES ('host', 'busy') ON CONFLICT (key) DO UPDATE SET value = excluded.value").run();
      parentPort.postMessage('locked');
      setTimeout(() => { db.exec('COMMIT'); db.close(); parentPort.postMessage('committed'); }, 300);
    `, { eval: true, workerData: file });
    const messages: string[] = [];
    const locked = new Promise<void>((resolve) => host.on('message', (m: string) => (messages.push(m), m === 'locked' && resolve())));
    const exited = new Promise((resolve) => host.on('exit', resolve));
    await locked;
    // `dosis roll load` from its own process: it reads (is the roll new?) and then writes.
    const b = open(file);
    expect(b.loadRoll(roll('R2', 2), 'anna').map((d) => d.doseId)).toEqual(['R1-001']);
    await exited;
    expect(messages).toEqual(['locked', 'committed']);
    expect(b.activeRoll()?.rollId).toBe('R2');
    expect(b.getMeta('host')).toBe('busy');
  });
});

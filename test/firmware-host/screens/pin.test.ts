// Staff PINs on a real SQLite file: hashing, lock-out after wrong PINs, lock-out surviving a restart, the audit trail.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PIN_LOCKOUT_MS, PIN_MAX_FAILURES, migratePins, pinAudit, setPin, verifyPin } from '../../../firmware-host/src/screens/pin.js';

const T0 = Date.UTC(2026, 0, 6, 9, 0);

describe('staff PINs', () => {
  let dir: string;
  let file: string;
  let db: Database.Database;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dosis-pin-'));
    file = join(dir, 'host.db');
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    migratePins(db);
  });
  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a salted scrypt hash, never the PIN', () => {
    setPin(db, 'anna', '4711', T0);
    setPin(db, 'bo', '4711', T0);
    const rows = db.prepare('SELECT staff_id, salt, hash, params FROM staff_pin ORDER BY staff_id').all() as {
      staff_id: string;
      salt: Buffer;
      hash: Buffer;
      params: string;
    }[];
    expect(rows.map((r) => r.staff_id)).toEqual(['anna', 'bo']);
    expect(rows[0]!.hash.length).toBe(32);
    expect(rows[0]!.salt.length).toBe(16);
    // Same PIN, different salts, different hashes.
    expect(rows[0]!.salt.equals(rows[1]!.salt)).toBe(false);
    expect(rows[0]!.hash.equals(rows[1]!.hash)).toBe(false);
    expect(JSON.parse(rows[0]!.params)).toMatchObject({ N: 16384, r: 8, p: 1 });
    const raw = JSON.stringify(db.prepare('SELECT * FROM staff_pin').all());
    expect(raw).not.toContain('4711');
  });

  it('accepts the right PIN and refuses a wrong one or an unknown staff id alike', () => {
    setPin(db, 'anna', '4711', T0);
    expect(verifyPin(db, 'anna', '4711', T0)).toEqual({ ok: true, staffId: 'anna' });
    expect(verifyPin(db, 'anna', '4712', T0)).toEqual({ ok: false, reason: 'wrong', attemptsLeft: PIN_MAX_FAILURES - 1 });
    expect(verifyPin(db, 'nobody', '4711', T0)).toEqual({ ok: false, reason: 'wrong', attemptsLeft: PIN_MAX_FAILURES - 1 });
    // A right PIN resets the count.
    expect(verifyPin(db, 'anna', '4711', T0).ok).toBe(true);
    expect(verifyPin(db, 'anna', '0000', T0)).toMatchObject({ reason: 'wrong', attemptsLeft: PIN_MAX_FAILURES - 1 });
  });

  it('rejects badly formed PINs and staff ids when setting', () => {
    expect(() => setPin(db, 'anna', '12', T0)).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_PIN_FORMAT' }));
    expect(() => setPin(db, 'anna', 'abcd', T0)).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_PIN_FORMAT' }));
    expect(() => setPin(db, 'an na', '1234', T0)).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_PIN_FORMAT' }));
  });

  it('locks out for 15 minutes after 5 wrong PINs, even for the right PIN, and the lock-out survives a restart', () => {
    setPin(db, 'anna', '4711', T0);
    const left: number[] = [];
    for (let i = 0; i < PIN_MAX_FAILURES - 1; i++) {
      const r = verifyPin(db, 'anna', '1111', T0 + i * 1000);
      if (r.ok || r.reason !== 'wrong') throw new Error(`attempt ${i} gave ${JSON.stringify(r)}`);
      left.push(r.attemptsLeft);
    }
    expect(left).toEqual([4, 3, 2, 1]);
    const fifth = verifyPin(db, 'anna', '1111', T0 + 5000);
    expect(fifth).toEqual({ ok: false, reason: 'locked', lockedUntilMs: T0 + 5000 + PIN_LOCKOUT_MS });
    expect(verifyPin(db, 'anna', '4711', T0 + 6000)).toMatchObject({ ok: false, reason: 'locked' });

    // Restart: a new connection on the same file.
    db.close();
    db = new Database(file);
    migratePins(db);
    expect(verifyPin(db, 'anna', '4711', T0 + 5000 + PIN_LOCKOUT_MS - 1)).toMatchObject({ ok: false, reason: 'locked' });
    expect(verifyPin(db, 'anna', '4711', T0 + 5000 + PIN_LOCKOUT_MS)).toEqual({ ok: true, staffId: 'anna' });

    // After a lock-out has run out the count starts afresh.
    expect(verifyPin(db, 'anna', '9999', T0 + 5000 + PIN_LOCKOUT_MS + 1)).toMatchObject({ reason: 'wrong', attemptsLeft: 4 });
  });

  it('locks out guessing under an unknown staff id too, and setting a new PIN lifts a lock-out', () => {
    for (let i = 0; i < PIN_MAX_FAILURES; i++) verifyPin(db, 'ghost', '0000', T0);
    expect(verifyPin(db, 'ghost', '0000', T0 + 1)).toMatchObject({ reason: 'locked' });
    setPin(db, 'ghost', '2468', T0 + 2);
    expect(verifyPin(db, 'ghost', '2468', T0 + 3).ok).toBe(true);
  });

  it('audits every attempt with its time and outcome, never the PIN', () => {
    setPin(db, 'anna', '4711', T0);
    verifyPin(db, 'anna', '4711', T0 + 1);
    for (let i = 0; i < PIN_MAX_FAILURES; i++) verifyPin(db, 'anna', '5555', T0 + 10 + i);
    verifyPin(db, 'anna', '4711', T0 + 100);
    verifyPin(db, 'x'.repeat(200), '1234', T0 + 200);
    const audit = pinAudit(db);
    expect(audit.map((a) => a.outcome)).toEqual(['set', 'ok', 'wrong', 'wrong', 'wrong', 'wrong', 'wrong', 'locked', 'wrong']);
    expect(audit.map((a) => a.atMs)).toEqual([T0, T0 + 1, T0 + 10, T0 + 11, T0 + 12, T0 + 13, T0 + 14, T0 + 100, T0 + 200]);
    // An id that could never be valid is audited under a bounded placeholder, not stored raw.
    expect(audit.at(-1)!.staffId).toBe('(invalid)');
    const raw = JSON.stringify(db.prepare('SELECT * FROM staff_pin_audit').all());
    expect(raw).not.toContain('4711');
    expect(raw).not.toContain('5555');
  });
});

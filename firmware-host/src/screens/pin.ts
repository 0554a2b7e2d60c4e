// Pharmacy staff PINs in the host's SQLite file: scrypt-hashed, locked out after repeated wrong PINs, every attempt audited.
//
// Lock-out is kept per staff id in its own table, for ids that have no PIN as
// well, so a wrong id and a wrong PIN look the same from outside (no id
// enumeration) and guessing ids is locked out like guessing PINs. Hashing is
// synchronous on purpose: check, hash, count and lock happen in one
// transaction, so parallel guesses cannot slip past the lock-out while a hash
// is being computed. Time comes in as `nowMs` (from the injected Clock).

import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { PinFormatError } from './errors.js';

export const PIN_MAX_FAILURES = 5;
export const PIN_LOCKOUT_MS = 15 * 60_000;

// N=2^14, r=8: 16 MiB and a few tens of ms a check on the board: slow for a guesser, quick for staff.
const SCRYPT = { N: 16_384, r: 8, p: 1, keyLen: 32 } as const;
const STAFF_ID = /^[A-Za-z0-9._-]{1,64}$/;
const PIN_FORMAT = /^[0-9]{4,12}$/;

export type PinResult =
  | { ok: true; staffId: string }
  | { ok: false; reason: 'wrong'; attemptsLeft: number }
  | { ok: false; reason: 'locked'; lockedUntilMs: number };

export function migratePins(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS staff_pin (
      staff_id      TEXT PRIMARY KEY,
      salt          BLOB NOT NULL,
      hash          BLOB NOT NULL,
      params        TEXT NOT NULL,
      set_at_ms     INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS staff_pin_lockout (
      staff_id        TEXT PRIMARY KEY,
      failures        INTEGER NOT NULL DEFAULT 0,
      locked_until_ms INTEGER
    );
    CREATE TABLE IF NOT EXISTS staff_pin_audit (
      id        INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ms     INTEGER NOT NULL,
      staff_id  TEXT NOT NULL,
      outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'wrong', 'locked', 'set'))
    );
  `);
}

type ScryptParams = { N: number; r: number; p: number; keyLen: number };

function hashPin(pin: string, salt: Buffer, params: ScryptParams): Buffer {
  return scryptSync(pin.normalize('NFKC'), salt, params.keyLen, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 });
}

function audit(db: Database, nowMs: number, staffId: string, outcome: 'ok' | 'wrong' | 'locked' | 'set'): void {
  db.prepare(`INSERT INTO staff_pin_audit (at_ms, staff_id, outcome) VALUES (?, ?, ?)`).run(nowMs, staffId, outcome);
}

/** Sets (or replaces) a staff member's PIN: 4–12 digits; clears any lock-out. */
export function setPin(db: Database, staffId: string, pin: string, nowMs = 0): void {
  if (!STAFF_ID.test(staffId)) throw new PinFormatError('a staff id is 1–64 letters, digits, dots, dashes or underscores');
  if (!PIN_FORMAT.test(pin)) throw new PinFormatError('a PIN is 4 to 12 digits');
  const salt = randomBytes(16);
  const hash = hashPin(pin, salt, SCRYPT);
  db.transaction(() => {
    db.prepare(
      `INSERT INTO staff_pin (staff_id, salt, hash, params, set_at_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (staff_id) DO UPDATE SET salt = excluded.salt, hash = excluded.hash, params = excluded.params, set_at_ms = excluded.set_at_ms`,
    ).run(staffId, salt, hash, JSON.stringify(SCRYPT), nowMs);
    db.prepare(`DELETE FROM staff_pin_lockout WHERE staff_id = ?`).run(staffId);
    audit(db, nowMs, staffId, 'set');
  })();
}

// Hashed against when the staff id has no PIN, so an unknown id costs the same time as a known one.
const DUMMY_SALT = randomBytes(16);

/** Checks a PIN at `nowMs`. The attempt that reaches PIN_MAX_FAILURES wrong PINs already answers `locked`. */
export function verifyPin(db: Database, staffId: string, pin: string, nowMs: number): PinResult {
  // Ids that could never have a PIN are still audited and locked under a bounded key, never stored raw.
  const key = STAFF_ID.test(staffId) ? staffId : '(invalid)';
  return db.transaction((): PinResult => {
    const lock = db.prepare(`SELECT failures, locked_until_ms FROM staff_pin_lockout WHERE staff_id = ?`).get(key) as
      | { failures: number; locked_until_ms: number | null }
      | undefined;
    if (lock?.locked_until_ms != null && nowMs < lock.locked_until_ms) {
      audit(db, nowMs, key, 'locked');
      return { ok: false, reason: 'locked', lockedUntilMs: lock.locked_until_ms };
    }
    // A lock-out that has run out starts the count afresh.
    const failuresBefore = lock?.locked_until_ms != null ? 0 : (lock?.failures ?? 0);

    const row = db.prepare(`SELECT salt, hash, params FROM staff_pin WHERE staff_id = ?`).get(key) as
      | { salt: Buffer; hash: Buffer; params: string }
      | undefined;
    const params: ScryptParams = row ? (JSON.parse(row.params) as ScryptParams) : SCRYPT;
    const candidate = hashPin(pin.length <= 64 ? pin : pin.slice(0, 64), row?.salt ?? DUMMY_SALT, params);
    const match = row !== undefined && PIN_FORMAT.test(pin) && candidate.length === row.hash.length && timingSafeEqual(candidate, row.hash);

    if (match) {
      db.prepare(`DELETE FROM staff_pin_lockout WHERE staff_id = ?`).run(key);
      audit(db, nowMs, key, 'ok');
      return { ok: true, staffId: key };
    }
    const failures = failuresBefore + 1;
    const lockedUntilMs = failures >= PIN_MAX_FAILURES ? nowMs + PIN_LOCKOUT_MS : null;
    db.prepare(
      `INSERT INTO staff_pin_lockout (staff_id, failures, locked_until_ms) VALUES (?, ?, ?)
       ON CONFLICT (staff_id) DO UPDATE SET failures = excluded.failures, locked_until_ms = excluded.locked_until_ms`,
    ).run(key, lockedUntilMs === null ? failures : 0, lockedUntilMs);
    audit(db, nowMs, key, 'wrong');
    if (lockedUntilMs !== null) return { ok: false, reason: 'locked', lockedUntilMs };
    return { ok: false, reason: 'wrong', attemptsLeft: PIN_MAX_FAILURES - failures };
  })();
}

export type PinAuditRow = { atMs: number; staffId: string; outcome: 'ok' | 'wrong' | 'locked' | 'set' };

/** The audit trail, oldest first (for the tests and an export). */
export function pinAudit(db: Database, limit = 1000): PinAuditRow[] {
  const rows = db.prepare(`SELECT at_ms, staff_id, outcome FROM staff_pin_audit ORDER BY id LIMIT ?`).all(limit) as {
    at_ms: number;
    staff_id: string;
    outcome: PinAuditRow['outcome'];
  }[];
  return rows.map((r) => ({ atMs: r.at_ms, staffId: r.staff_id, outcome: r.outcome }));
}

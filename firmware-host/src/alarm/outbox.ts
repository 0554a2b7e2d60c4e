// The robot's alarm outbox: events for the alarm centre, written in the same transaction as the outcome they report.
//
// The dispensing store calls `enqueueOutbox` inside its own transaction, so an
// outcome and its alarm event are committed together or not at all. The
// delivery loop reads undelivered rows oldest first and marks them delivered
// once the centre answered 2xx. `seq` is the per-device sequence number the
// centre uses to see gaps; `event_id` is stable across every retry.

import type { Database, Statement } from 'better-sqlite3';
import type { EventType } from '../../../protocol/src/centre/contract.js';

export type OutboxEventType = EventType;

export type OutboxEvent = {
  /** Stable id, the same on every delivery attempt (the centre deduplicates by it). */
  eventId: string;
  type: OutboxEventType;
  occurredAtMs: number;
  /** The dose the event is about, when it is about one. */
  doseId?: string | undefined;
  /** Pseudonymous and technical fields only: never names, never medication names. */
  payload: Record<string, string | number | boolean | null>;
};

export type OutboxRow = OutboxEvent & { seq: number; attempts: number };

export function migrateOutbox(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS outbox (
      seq             INTEGER PRIMARY KEY AUTOINCREMENT,
      event_id        TEXT NOT NULL UNIQUE,
      type            TEXT NOT NULL,
      occurred_at_ms  INTEGER NOT NULL,
      dose_id         TEXT,
      payload_json    TEXT NOT NULL,
      attempts        INTEGER NOT NULL DEFAULT 0,
      delivered_at_ms INTEGER
    );
    CREATE INDEX IF NOT EXISTS outbox_undelivered ON outbox (seq) WHERE delivered_at_ms IS NULL;
  `);
  // An event the centre refuses as malformed (a 4xx on that event alone) leaves the queue so it cannot hold up the
  // ones behind it; it stays here, with the centre's status, for the service log and the pharmacy screen's events.
  const columns = new Set((db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).map((c) => c.name));
  if (!columns.has('refused_status')) db.exec('ALTER TABLE outbox ADD COLUMN refused_status INTEGER; ALTER TABLE outbox ADD COLUMN refused_at_ms INTEGER;');
}

/** Adds an event; call it inside the transaction that writes what the event reports. Enqueuing the same event id twice is a no-op. */
export function enqueueOutbox(db: Database, ev: OutboxEvent): void {
  let insert = inserts.get(db);
  if (!insert) {
    insert = db.prepare(
      `INSERT INTO outbox (event_id, type, occurred_at_ms, dose_id, payload_json) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (event_id) DO NOTHING`,
    );
    inserts.set(db, insert);
  }
  // Whole milliseconds: the centre's schema takes integers, and a clock may run in fractions.
  insert.run(ev.eventId, ev.type, Math.floor(ev.occurredAtMs), ev.doseId ?? null, JSON.stringify(ev.payload));
}

const inserts = new WeakMap<Database, Statement>();

type RawRow = {
  seq: number;
  event_id: string;
  type: OutboxEventType;
  occurred_at_ms: number;
  dose_id: string | null;
  payload_json: string;
  attempts: number;
};

/** Undelivered events, oldest first (not those the centre refused). */
export function peekOutbox(db: Database, limit: number): OutboxRow[] {
  let byLimit = peeks.get(db);
  if (!byLimit) peeks.set(db, (byLimit = new Map()));
  let peek = byLimit.get(limit);
  if (!peek) {
    // The limit written into the text: SQLite plans a bound LIMIT again on every run.
    if (!Number.isInteger(limit)) throw new TypeError(`a row limit must be a whole number, got ${limit}`);
    peek = db.prepare(`SELECT seq, event_id, type, occurred_at_ms, dose_id, payload_json, attempts FROM outbox WHERE delivered_at_ms IS NULL AND refused_at_ms IS NULL ORDER BY seq LIMIT ${limit}`);
    byLimit.set(limit, peek);
  }
  const rows = peek.all() as RawRow[];
  return rows.map((r) => ({
    seq: r.seq,
    eventId: r.event_id,
    type: r.type,
    occurredAtMs: r.occurred_at_ms,
    doseId: r.dose_id ?? undefined,
    payload: JSON.parse(r.payload_json) as OutboxEvent['payload'],
    attempts: r.attempts,
  }));
}

export function outboxDepth(db: Database): number {
  return (prepared(db, depths, `SELECT count(*) AS n FROM outbox WHERE delivered_at_ms IS NULL AND refused_at_ms IS NULL`).get() as { n: number }).n;
}

// Prepared once per database: the delivery loop reads the queue after every status change.
const peeks = new WeakMap<Database, Map<number, Statement>>();
const depths = new WeakMap<Database, Statement>();
function prepared(db: Database, cache: WeakMap<Database, Statement>, sql: string): Statement {
  let st = cache.get(db);
  if (!st) {
    st = db.prepare(sql);
    cache.set(db, st);
  }
  return st;
}

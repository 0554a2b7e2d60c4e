// Delivery bookkeeping on the robot's outbox: attempts counted, rows marked delivered only after the centre's 2xx,
// and an event the centre refuses on its own taken out of the queue.
import type { Database } from 'better-sqlite3';

export function recordAttempt(db: Database, seqs: readonly number[]): void {
  const stmt = db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?');
  db.transaction(() => {
    for (const s of seqs) stmt.run(s);
  })();
}

export function markDelivered(db: Database, seqs: readonly number[], nowMs: number): void {
  const stmt = db.prepare('UPDATE outbox SET delivered_at_ms = ? WHERE seq = ? AND delivered_at_ms IS NULL');
  db.transaction(() => {
    for (const s of seqs) stmt.run(nowMs, s);
  })();
}

/** The centre refused this event on its own as malformed: out of the queue, kept with the status. */
export function markRefused(db: Database, seq: number, status: number, nowMs: number): void {
  db.prepare('UPDATE outbox SET refused_status = ?, refused_at_ms = ? WHERE seq = ? AND delivered_at_ms IS NULL').run(status, nowMs, seq);
}

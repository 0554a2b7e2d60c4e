// Opens the alarm centre's SQLite file (WAL, synchronous=FULL) and brings its schema up to date.
import Database from 'better-sqlite3';

export const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    secret_enc TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    last_heartbeat_at_ms INTEGER,
    heartbeat_json TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0,
    event_count INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE device_contacts (device_id TEXT PRIMARY KEY REFERENCES devices(id), contact_json TEXT NOT NULL);
  CREATE TABLE events (
    device_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    dose_id TEXT,
    payload_json TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    alert_id INTEGER,
    PRIMARY KEY (device_id, event_id)
  );
  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    fold_key TEXT NOT NULL,
    type TEXT NOT NULL,
    urgency INTEGER NOT NULL,
    dose_id TEXT,
    state TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_at_ms INTEGER,
    escalated_at_ms INTEGER,
    resolved_at_ms INTEGER,
    outcome TEXT,
    report_count INTEGER NOT NULL DEFAULT 1,
    notify_count INTEGER NOT NULL DEFAULT 1,
    last_notified_at_ms INTEGER NOT NULL,
    contact_attempts INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1
  );
  CREATE UNIQUE INDEX alerts_live ON alerts (device_id, fold_key) WHERE state IN ('open', 'claimed', 'escalated');
  CREATE INDEX alerts_state ON alerts (state);
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id INTEGER,
    device_id TEXT,
    version INTEGER,
    detail_json TEXT
  );
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  CREATE TABLE operators (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
  );
  CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES operators(username),
    expires_at_ms INTEGER NOT NULL
  );
  CREATE TABLE used_signatures (signature TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
  CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    ended_early_at_ms INTEGER
  );
  CREATE TABLE daily_reports (
    device_id TEXT NOT NULL,
    day TEXT NOT NULL,
    dosings INTEGER NOT NULL, pills INTEGER NOT NULL, correct INTEGER NOT NULL,
    green INTEGER NOT NULL, yellow INTEGER NOT NULL, missed INTEGER NOT NULL, taken INTEGER NOT NULL,
    PRIMARY KEY (device_id, day)
  );
  `,
  `
  -- Failed logins per attempted username (known or not, so the answer never tells which); a lock grows with each failure.
  CREATE TABLE login_failures (
    username TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at_ms INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL
  );
  CREATE INDEX login_failures_age ON login_failures (last_failure_at_ms);
  -- The district a robot serves, for the municipality's reports.
  ALTER TABLE devices ADD COLUMN district TEXT;
  ALTER TABLE daily_reports ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX alerts_queue ON alerts (urgency DESC, opened_at_ms);
  `,
  // The scheduler purges old signatures every pass; without this it reads the whole table (10 minutes of
  // requests, hundreds of thousands of rows for a national fleet) once a second.
  `CREATE INDEX used_signatures_at ON used_signatures (at_ms);`,
  // Accepted request signatures, keyed by the time the device signed and the signature's 32 bytes: a replay repeats
  // both, so it finds its original; and since every accepted request was signed within the window of now, the keys
  // arrive in time order and leave by their time. One b-tree filled at its end, where used_signatures took a table
  // and two indexes, one of them filled at random places (most of an event's pages written per COMMIT).
  // used_signatures is only read until the rows it had at the upgrade have been purged (store/accounts.ts).
  // Every report that opens or folds an alert asks whether its device is silenced: by device, not by reading every
  // silence ever set (one per care pause and per operator silence, kept for the audit).
  `CREATE TABLE request_signatures (signed_at_ms INTEGER NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (signed_at_ms, signature)) WITHOUT ROWID;
  CREATE INDEX silences_device ON silences (device_id, ended_early_at_ms);`,
];

export type Db = Database.Database;

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // FULL: a 2xx answered after COMMIT survives power loss, not only a process crash.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

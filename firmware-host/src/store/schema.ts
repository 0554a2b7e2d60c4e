// The robot's database schema, versioned: an ordered list of migrations, each run once in its own transaction.
//
// `meta.schema_version` holds how many have run. A database from an earlier build is brought forward step by step
// (test/firmware-host/store/schema.test.ts opens one of every earlier version); one from a newer build is refused.
// A new table or column is a new migration appended at the end: an applied migration is never edited.

import type { Database as Db } from 'better-sqlite3';
import { migrateOutbox } from '../alarm/outbox.js';
import { migratePins } from '../screens/pin.js';
import { migrateReceipts } from '../screens/receipts.js';
import { StoreError } from './store.js';

export type MigrationContext = { firstCommandNumber: number };
export type Migration = { name: string; up(db: Db, ctx: MigrationContext): void };

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'rolls, doses, motion intents and the append-only event log',
    up(db, ctx) {
      db.exec(`
        CREATE TABLE rolls (
          roll_id        TEXT PRIMARY KEY,
          citizen_id     TEXT NOT NULL,
          loaded_at_ms   INTEGER NOT NULL,
          loaded_by      TEXT,
          unloaded_at_ms INTEGER
        );
        CREATE TABLE doses (
          dose_id       TEXT PRIMARY KEY,
          roll_id       TEXT NOT NULL REFERENCES rolls (roll_id),
          position      INTEGER NOT NULL,
          slot          INTEGER NOT NULL,
          label         TEXT NOT NULL,
          intake_at_ms  INTEGER NOT NULL,
          pill_count    INTEGER NOT NULL,
          timing_json   TEXT NOT NULL,
          state         TEXT NOT NULL CHECK (state IN ('scheduled','dispensing','presented','taken','missed','failed','returned')),
          cls           TEXT CHECK (cls IN ('correct','green','yellow')),
          reason        TEXT,
          counted_pills INTEGER,
          attempts      INTEGER NOT NULL DEFAULT 0,
          overdue       INTEGER NOT NULL DEFAULT 0,
          final_at_ms   INTEGER
        );
        CREATE INDEX doses_open ON doses (intake_at_ms, position) WHERE state IN ('scheduled','dispensing','presented');
        CREATE TABLE intents (
          n          INTEGER PRIMARY KEY AUTOINCREMENT,
          command_id TEXT UNIQUE,
          dose_id    TEXT NOT NULL REFERENCES doses (dose_id),
          name       TEXT NOT NULL CHECK (name IN ('ROTATE','RELEASE','SHAKE')),
          slot       INTEGER NOT NULL,
          sent_at_ms INTEGER NOT NULL,
          boot_id    TEXT,
          result     TEXT
        );
        CREATE INDEX intents_dose ON intents (dose_id, n);
        CREATE TABLE events (
          id          INTEGER PRIMARY KEY AUTOINCREMENT,
          at_ms       INTEGER NOT NULL,
          type        TEXT NOT NULL,
          dose_id     TEXT,
          detail_json TEXT
        );
        CREATE TRIGGER events_append_only_u BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        CREATE TRIGGER events_append_only_d BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
      `);
      // Command ids continue from a random point per database, so a replaced host never reuses one the MCU remembers.
      db.prepare(`INSERT INTO sqlite_sequence (name, seq) VALUES ('intents', ?)`).run(ctx.firstCommandNumber);
    },
  },
  {
    // Until this version these tables were created by the parts that use them, on first use.
    name: 'alarm outbox (with refusals), staff PINs with lock-out and audit, return receipts',
    up(db) {
      migrateOutbox(db);
      migratePins(db);
      migrateReceipts(db);
    },
  },
  {
    // SQLite cannot change a CHECK in place: doses is rebuilt. Intents reference doses, and dropping a referenced
    // table fails with foreign keys on, so intents is set aside first and rebuilt after, with its command-number
    // sequence kept (a command id is never reused).
    name: 'commissioning, staff roles, pauses, care states (suspended, travel, withdrawn), pouch use-by and instructions, receipt kinds',
    up(db) {
      const seq = (db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'intents'`).get() as { seq: number } | undefined)?.seq ?? 0;
      db.exec(`
        CREATE TABLE intents_keep AS SELECT * FROM intents;
        DROP TABLE intents;
        CREATE TABLE commissioning (
          n                    INTEGER PRIMARY KEY AUTOINCREMENT,
          citizen_id           TEXT NOT NULL,
          commissioned_at_ms   INTEGER NOT NULL,
          commissioned_by      TEXT NOT NULL,
          decommissioned_at_ms INTEGER,
          decommissioned_by    TEXT
        );
        CREATE UNIQUE INDEX commissioning_active ON commissioning ((1)) WHERE decommissioned_at_ms IS NULL;
        CREATE TABLE staff_role (
          staff_id TEXT PRIMARY KEY,
          role     TEXT NOT NULL CHECK (role IN ('admin'))
        );
        CREATE TABLE pauses (
          n           INTEGER PRIMARY KEY AUTOINCREMENT,
          from_ms     INTEGER NOT NULL,
          until_ms    INTEGER NOT NULL,
          reason      TEXT NOT NULL,
          staff_id    TEXT NOT NULL,
          ended_at_ms INTEGER,
          ended_by    TEXT,
          CHECK (until_ms > from_ms)
        );
        CREATE TABLE doses_new (
          dose_id       TEXT PRIMARY KEY,
          roll_id       TEXT NOT NULL REFERENCES rolls (roll_id),
          position      INTEGER NOT NULL,
          slot          INTEGER NOT NULL,
          label         TEXT NOT NULL,
          intake_at_ms  INTEGER NOT NULL,
          pill_count    INTEGER NOT NULL,
          timing_json   TEXT NOT NULL,
          state         TEXT NOT NULL CHECK (state IN ('scheduled','dispensing','presented','taken','missed','failed','returned','suspended','travel','withdrawn')),
          cls           TEXT CHECK (cls IN ('correct','green','yellow')),
          reason        TEXT,
          counted_pills INTEGER,
          attempts      INTEGER NOT NULL DEFAULT 0,
          overdue       INTEGER NOT NULL DEFAULT 0,
          final_at_ms   INTEGER,
          use_by_ms     INTEGER,
          instructions  TEXT
        );
        INSERT INTO doses_new (dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state, cls, reason, counted_pills, attempts, overdue, final_at_ms)
          SELECT dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state, cls, reason, counted_pills, attempts, overdue, final_at_ms FROM doses;
        DROP TABLE doses;
        ALTER TABLE doses_new RENAME TO doses;
        CREATE INDEX doses_open ON doses (intake_at_ms, position) WHERE state IN ('scheduled','dispensing','presented');
        CREATE TABLE intents (
          n          INTEGER PRIMARY KEY AUTOINCREMENT,
          command_id TEXT UNIQUE,
          dose_id    TEXT NOT NULL REFERENCES doses (dose_id),
          name       TEXT NOT NULL CHECK (name IN ('ROTATE','RELEASE','SHAKE')),
          slot       INTEGER NOT NULL,
          sent_at_ms INTEGER NOT NULL,
          boot_id    TEXT,
          result     TEXT
        );
        INSERT INTO intents (n, command_id, dose_id, name, slot, sent_at_ms, boot_id, result)
          SELECT n, command_id, dose_id, name, slot, sent_at_ms, boot_id, result FROM intents_keep;
        DROP TABLE intents_keep;
        CREATE INDEX intents_dose ON intents (dose_id, n);
        ALTER TABLE return_receipt ADD COLUMN kind TEXT NOT NULL DEFAULT 'unload';
        ALTER TABLE return_receipt ADD COLUMN detail_json TEXT;
      `);
      db.prepare(`DELETE FROM sqlite_sequence WHERE name = 'intents'`).run();
      db.prepare(`INSERT INTO sqlite_sequence (name, seq) VALUES ('intents', ?)`).run(seq);
    },
  },
  {
    // Every heartbeat counts the doses that ended today and yesterday: read from this index, not from every dose ever.
    name: 'doses by when they ended',
    up(db) {
      db.exec('CREATE INDEX doses_ended ON doses (final_at_ms) WHERE final_at_ms IS NOT NULL');
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Db): number {
  db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  return Number((db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: string } | undefined)?.value ?? 0);
}

/** Brings the database to SCHEMA_VERSION (or to `upTo`, for the upgrade tests); refuses one newer than this build. */
export function migrate(db: Db, ctx: MigrationContext, upTo: number = SCHEMA_VERSION): void {
  const v = schemaVersion(db);
  if (v > SCHEMA_VERSION) throw new StoreError('DOSIS_ERR_STORE_VERSION', `database schema ${v} is newer than this build's ${SCHEMA_VERSION}`);
  const setVersion = db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  for (let n = v; n < upTo; n++) {
    db.transaction(() => {
      MIGRATIONS[n]!.up(db, ctx);
      setVersion.run(String(n + 1));
    })();
  }
}

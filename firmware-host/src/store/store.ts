// The robot's durable state: rolls, doses, write-ahead motion intents, outcomes, the event log and the alarm outbox.
//
// One better-sqlite3 file in WAL mode with synchronous=FULL, so a committed row
// survives a power cut. Every method is one transaction: a dose's final state,
// its event-log row and its alarm-outbox event are committed together or not at
// all. A motion's command id is committed here before the command goes on the
// wire (write-ahead intent), so a restarted host asks the MCU about it instead
// of repeating it.

import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Clock } from '../../../protocol/src/clock.js';
import { enqueueOutbox, outboxDepth, type OutboxEventType } from '../alarm/outbox.js';
import { migrate } from './schema.js';
import { DEFAULT_TIMING, type DoseTiming, type ScheduledPouch } from '../roll/types.js';

/** How long a write waits for another process's transaction on the same file before it fails. */
export const BUSY_TIMEOUT_MS = 5_000;

/** The meta key where the host records the zone it runs with, so the commands on its database print receipts in it. */
export const TIME_ZONE_META = 'time_zone';

export type DoseState = 'scheduled' | 'dispensing' | 'presented' | 'taken' | 'missed' | 'failed' | 'returned' | CareState;
/**
 * Doses taken out of dispensing by the staff: in a pause (suspended; those still to come go back to scheduled when
 * the pause ends early), cut into a travel pack ahead of time (travel), or withdrawn on a prescription change.
 * None is reminded, missed or counted as a dosing.
 */
export type CareState = 'suspended' | 'travel' | 'withdrawn';
export type FinalState = 'taken' | 'missed' | 'failed';
export type DoseClass = 'correct' | 'green' | 'yellow';
/** The MCU's cup-lift counter wraps here. */
const LIFTS_MODULO = 65_536;
export const FINAL_STATES: readonly DoseState[] = ['taken', 'missed', 'failed', 'returned', 'suspended', 'travel', 'withdrawn'];

/**
 * The doses that ended at or after a time, returned pouches left out (Store.endingsSince). Read for every heartbeat:
 * the four columns the daily figures need, from the index of when doses ended (doses_ended in schema.ts).
 */
export const ENDINGS_SINCE = `SELECT final_at_ms, state, cls, counted_pills FROM doses WHERE final_at_ms >= ? AND state <> 'returned'`;

/** How a dose ended, for the daily figures: [final_at_ms, state, cls, counted pills]. */
export type DoseEnding = [finalAtMs: number, state: DoseState, cls: DoseClass | null, countedPills: number | null];

export type DoseRow = {
  doseId: string;
  rollId: string;
  position: number;
  slot: number;
  label: string;
  intakeAtMs: number;
  pillCount: number;
  timing: DoseTiming;
  state: DoseState;
  cls: DoseClass | null;
  reason: string | null;
  countedPills: number | null;
  attempts: number;
  overdue: boolean;
  finalAtMs: number | null;
  /** End of the pouch's use-by date (UTC ms), when the manifest gives one. */
  useByMs: number | null;
  /** How to take the dose, from the manifest ("tages med mad"), as JSON `{ "da": …, "en": … }`; shown with the dose. */
  instructions: string | null;
};

/** An open dose as the status shows it. */
export type OpenHead = Readonly<Pick<DoseRow, 'doseId' | 'intakeAtMs' | 'pillCount' | 'state'>>;

export type IntentName = 'ROTATE' | 'RELEASE' | 'SHAKE';
export type IntentRow = { commandId: string; doseId: string; name: IntentName; slot: number; sentAtMs: number; result: string | null; bootId: string | null };

export type LoggedEvent = { id: number; atMs: number; type: string; doseId: string | null; detail: Record<string, unknown> | null };

export type RollRow = { rollId: string; citizenId: string; loadedAtMs: number; loadedBy: string | null; unloadedAtMs: number | null };

export type Commissioning = { citizenId: string; atMs: number; by: string };

export type Pause = { n: number; fromMs: number; untilMs: number; reason: string; staffId: string; endedAtMs: number | null };

/** A pause as the alarm centre knows it: its number with its start, so a robot set up afresh never repeats one. */
const pauseKey = (n: number, fromMs: number): string => `${n}-${fromMs}`;

/** The reason of a dose not dispensed because its pouch was past its use-by date when its time came. */
export const POUCH_EXPIRED = 'pouch_expired';

export class StoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}


/** The doses columns in the order toDose reads them: statements that read whole doses return rows as arrays, cheaper than objects. */
const DOSE_COLUMNS = 'dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state, cls, reason, counted_pills, attempts, overdue, final_at_ms, use_by_ms, instructions';
type RawDose = [
  doseId: string, rollId: string, position: number, slot: number, label: string, intakeAtMs: number, pillCount: number, timingJson: string,
  state: DoseState, cls: DoseClass | null, reason: string | null, countedPills: number | null, attempts: number, overdue: number, finalAtMs: number | null,
  useByMs: number | null, instructions: string | null,
];

/** Parsed timings by their JSON (a roll's doses share one): each row gets its own copy, without parsing it again. */
const timings = new Map<string, DoseTiming>();
const TIMINGS_KEPT = 64;
function timingOf(json: string): DoseTiming {
  let t = timings.get(json);
  if (!t) {
    if (timings.size >= TIMINGS_KEPT) timings.clear();
    t = JSON.parse(json) as DoseTiming;
    timings.set(json, t);
  }
  return { ...t };
}

const toDose = (r: RawDose): DoseRow => ({
  doseId: r[0], rollId: r[1], position: r[2], slot: r[3], label: r[4], intakeAtMs: r[5], pillCount: r[6], timing: timingOf(r[7]),
  state: r[8], cls: r[9], reason: r[10], countedPills: r[11], attempts: r[12], overdue: r[13] === 1, finalAtMs: r[14],
  useByMs: r[15], instructions: r[16],
});

/** The WHERE term of the open doses' partial index (doses_open in schema.ts), written as the index is. */
const OPEN = `state IN ('scheduled','dispensing','presented')`;

/** Reads whole doses: `SELECT <the dose columns> <rest>`, rows as arrays for toDose. */
const selectDoses = (db: Db, rest: string) => db.prepare(`SELECT ${DOSE_COLUMNS} ${rest}`).raw();

/**
 * A query prepared once per LIMIT, the limit written into its text: SQLite plans a bound `LIMIT ?` again on every run
 * (2–4× the cost of a literal one). `make` gets the clause (empty for a negative limit: all rows).
 */
function limited(make: (limitClause: string) => Statement): (limit: number) => Statement {
  const byLimit = new Map<number, Statement>();
  return (limit) => {
    let st = byLimit.get(limit);
    if (!st) {
      if (!Number.isInteger(limit)) throw new TypeError(`a row limit must be a whole number, got ${limit}`);
      st = make(limit < 0 ? '' : ` LIMIT ${limit}`);
      byLimit.set(limit, st);
    }
    return st;
  };
}

export type StoreOptions = {
  clock: Clock;
  /** FULL on the robot (default); the soak may pass NORMAL or OFF for an in-memory or throw-away file. */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  /** Timing defaults for doses whose roll gives none. */
  timing?: Partial<DoseTiming>;
  /** First command number of a new database; random by default, so two databases never share command ids. */
  firstCommandNumber?: number;
};

export class Store {
  readonly db: Db;
  readonly #clock: Clock;
  readonly #timing: DoseTiming;
  readonly #q;
  /**
   * Runs its argument as one transaction (nested: a savepoint). BEGIN IMMEDIATE: most bodies read before they write,
   * and a deferred transaction whose snapshot another process (`dosis roll load`, the care commands) committed past
   * cannot take the write lock at all (SQLITE_BUSY, whatever the busy timeout); taken at BEGIN, the lock is waited
   * for. Built once: better-sqlite3 makes a new wrapper per db.transaction().
   */
  readonly #tx: <R>(body: () => R) => R;
  /** Opened from an image of a store (see open()): in memory, yet it stands for a file the next process opens again. */
  #image = false;

  constructor(db: Db, opts: StoreOptions) {
    this.db = db;
    this.#clock = opts.clock;
    this.#timing = { ...DEFAULT_TIMING, ...opts.timing };
    migrate(db, { firstCommandNumber: opts.firstCommandNumber ?? Math.floor(Math.random() * 0x40000000) });
    this.#q = {
      dose: selectDoses(db, 'FROM doses WHERE dose_id = ?'),
      open: limited((n) => selectDoses(db, `FROM doses WHERE ${OPEN} ORDER BY intake_at_ms, position${n}`)),
      activeRoll: db.prepare('SELECT * FROM rolls WHERE unloaded_at_ms IS NULL ORDER BY loaded_at_ms DESC LIMIT 1'),
      // The open-state term (implied by 'scheduled') lets SQLite read the open doses' index instead of every dose ever.
      remaining: selectDoses(db, `FROM doses WHERE ${OPEN} AND roll_id = ? AND state = 'scheduled' ORDER BY intake_at_ms, position`),
      remainingCount: db.prepare(`SELECT count(*) AS n, max(intake_at_ms) AS last FROM doses WHERE ${OPEN} AND roll_id = ? AND state = 'scheduled'`),
      endedSince: db.prepare(ENDINGS_SINCE).raw(),
      heads: limited((n) => db.prepare(`SELECT dose_id, intake_at_ms, pill_count, state FROM doses WHERE ${OPEN} ORDER BY intake_at_ms, position${n}`)),
      setState: db.prepare('UPDATE doses SET state = ?, attempts = ? WHERE dose_id = ?'),
      claim: db.prepare(`UPDATE doses SET state = 'dispensing', attempts = ? WHERE dose_id = ? AND state = 'scheduled' AND (use_by_ms IS NULL OR use_by_ms >= ?)`),
      present: db.prepare(`UPDATE doses SET state = 'presented', cls = ?, reason = ?, counted_pills = ?, attempts = ? WHERE dose_id = ?`),
      finish: db.prepare(`UPDATE doses SET state = ?, cls = coalesce(?, cls), reason = coalesce(?, reason), counted_pills = coalesce(?, counted_pills), attempts = max(attempts, ?), final_at_ms = ? WHERE dose_id = ? AND state NOT IN (${FINAL_STATES.map((f) => `'${f}'`).join(',')}) RETURNING ${DOSE_COLUMNS}`).raw(),
      overdue: db.prepare('UPDATE doses SET overdue = 1 WHERE dose_id = ? AND overdue = 0'),
      intent: db.prepare('INSERT INTO intents (dose_id, name, slot, sent_at_ms, boot_id) VALUES (?, ?, ?, ?, ?)'),
      intentId: db.prepare('UPDATE intents SET command_id = ? WHERE n = ?'),
      intentDone: db.prepare('UPDATE intents SET result = ? WHERE command_id = ?'),
      pending: db.prepare('SELECT * FROM intents WHERE dose_id = ? AND result IS NULL ORDER BY n DESC LIMIT 1'),
      intents: db.prepare('SELECT * FROM intents WHERE dose_id = ? ORDER BY n'),
      log: db.prepare('INSERT INTO events (at_ms, type, dose_id, detail_json) VALUES (?, ?, ?, ?)'),
      recent: limited((n) => db.prepare(`SELECT * FROM events ORDER BY id DESC${n}`)),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
    const tx = db.transaction((body: () => unknown) => body());
    this.#tx = ((body: () => unknown) => tx.immediate(body)) as <R>(body: () => R) => R;
  }

  /**
   * Opens the store file at `path` (':memory:' for a private store that dies with the process), or an image of one
   * (`image()`): an in-memory copy that stands for the file a crashed process left, which the soak's memory transport
   * reboots a host on instead of a file on disk.
   */
  static open(path: string | Buffer, opts: StoreOptions): Store {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    db.pragma('foreign_keys = ON');
    // The host and the commands on its file (roll load, care) write to it from their own processes: each waits for the
    // other's commit, a few milliseconds, instead of failing the write.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const store = new Store(db, opts);
    store.#image = Buffer.isBuffer(path);
    return store;
  }

  /**
   * What this store's file would hold if its process died now: every committed transaction and nothing of an open
   * one, which is rolled back (the process is gone). For Store.open(image).
   */
  image(): Buffer {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    return this.db.serialize();
  }

  close(): void {
    this.db.close();
  }

  // ------------------------------------------------------------ rolls

  activeRoll(): RollRow | undefined {
    const r = this.#q.activeRoll.get() as
      | { roll_id: string; citizen_id: string; loaded_at_ms: number; loaded_by: string | null; unloaded_at_ms: number | null }
      | undefined;
    return r && { rollId: r.roll_id, citizenId: r.citizen_id, loadedAtMs: r.loaded_at_ms, loadedBy: r.loaded_by, unloadedAtMs: r.unloaded_at_ms };
  }

  /**
   * Makes `pouches` the schedule, in one transaction: the roll loaded before is
   * unloaded and its pouches not yet dispensed are returned. A power cut leaves
   * the old roll or the new one, never a mix. Returns the pouches that came back.
   */
  loadRoll(roll: { rollId: string; citizenId: string; pouches: readonly ScheduledPouch[] }, staffId: string | null): DoseRow[] {
    return this.#tx(() => {
      const now = this.#clock.now();
      // Checked here, whatever the caller checked: one citizen's medicine never goes into another's robot.
      const bound = this.commissioning();
      if (bound && bound.citizenId !== roll.citizenId) {
        throw new StoreError('DOSIS_ERR_WRONG_CITIZEN', `roll ${roll.rollId} is for another citizen than the one this robot is commissioned for`);
      }
      const returned = this.#unload(now, staffId);
      if (this.db.prepare('SELECT 1 FROM rolls WHERE roll_id = ?').get(roll.rollId)) {
        throw new StoreError('DOSIS_ERR_ROLL_LOADED_BEFORE', `roll ${roll.rollId} was loaded before`);
      }
      this.db.prepare('INSERT INTO rolls (roll_id, citizen_id, loaded_at_ms, loaded_by) VALUES (?, ?, ?, ?)').run(roll.rollId, roll.citizenId, now, staffId);
      const ins = this.db.prepare(
        `INSERT INTO doses (dose_id, roll_id, position, slot, label, intake_at_ms, pill_count, timing_json, state, use_by_ms, instructions)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?)`,
      );
      for (const p of roll.pouches) {
        ins.run(p.label, roll.rollId, p.position, p.slot, p.label, p.intakeAtMs, p.pillCount, JSON.stringify({ ...this.#timing, ...p.timing }), p.useByMs ?? null, p.instructions ? JSON.stringify(p.instructions) : null);
      }
      // A roll loaded during a pause: its doses in the pause are suspended like the others.
      const paused = this.activePause();
      if (paused) this.#care('suspended', `FROM doses WHERE roll_id = ? AND state = 'scheduled' AND intake_at_ms >= ? AND intake_at_ms < ?`, [roll.rollId, Math.max(paused.fromMs, now), paused.untilMs], now);
      this.#logAt(now, 'roll_loaded', null, { rollId: roll.rollId, pouches: roll.pouches.length, staffId, returned: returned.length });
      return returned;
    });
  }

  /** Unloads the active roll; its pouches not yet dispensed come back (the return receipt). */
  unloadRoll(staffId: string | null): DoseRow[] {
    return this.#tx(() => {
      const now = this.#clock.now();
      const active = this.activeRoll();
      const returned = this.#unload(now, staffId);
      if (active) this.#logAt(now, 'roll_unloaded', null, { rollId: active.rollId, staffId, returned: returned.length });
      return returned;
    });
  }

  #unload(now: number, _staffId: string | null): DoseRow[] {
    const active = this.activeRoll();
    if (!active) return [];
    const busy = this.db.prepare(`SELECT dose_id FROM doses WHERE roll_id = ? AND state IN ('dispensing','presented')`).all(active.rollId) as { dose_id: string }[];
    if (busy.length > 0) throw new StoreError('DOSIS_ERR_ROLL_BUSY', `dose ${busy[0]!.dose_id} is being dispensed or waits in the cup`);
    // Suspended pouches were never cut either: they come back too, and keep their state (not dispensed, not missed).
    const back = (selectDoses(this.db, `FROM doses WHERE roll_id = ? AND state IN ('scheduled','suspended') ORDER BY position`).all(active.rollId) as RawDose[]).map(toDose);
    this.db.prepare(`UPDATE doses SET state = 'returned', final_at_ms = ? WHERE roll_id = ? AND state = 'scheduled'`).run(now, active.rollId);
    this.db.prepare('UPDATE rolls SET unloaded_at_ms = ? WHERE roll_id = ?').run(now, active.rollId);
    return back;
  }

  // ------------------------------------------------------------ commissioning

  /** The citizen this robot is bound to, or undefined before it is commissioned. */
  commissioning(): Commissioning | undefined {
    const r = this.db.prepare('SELECT citizen_id, commissioned_at_ms, commissioned_by FROM commissioning WHERE decommissioned_at_ms IS NULL').get() as
      | { citizen_id: string; commissioned_at_ms: number; commissioned_by: string }
      | undefined;
    return r && { citizenId: r.citizen_id, atMs: r.commissioned_at_ms, by: r.commissioned_by };
  }

  /** Binds the robot to a citizen. The same citizen again changes nothing; another one needs decommission() first. */
  commission(citizenId: string, staffId: string): Commissioning {
    return this.#tx(() => {
      const bound = this.commissioning();
      if (bound && bound.citizenId === citizenId) return bound;
      if (bound) throw new StoreError('DOSIS_ERR_COMMISSIONED', 'this robot is commissioned for another citizen: decommission it first');
      const now = this.#clock.now();
      this.db.prepare('INSERT INTO commissioning (citizen_id, commissioned_at_ms, commissioned_by) VALUES (?, ?, ?)').run(citizenId, now, staffId);
      this.#logAt(now, 'robot_commissioned', null, { citizenId, staffId });
      return { citizenId, atMs: now, by: staffId };
    });
  }

  /** Ends the binding; refused while a roll is loaded (all rolls out and receipted first). */
  decommission(staffId: string): Commissioning {
    return this.#tx(() => {
      const bound = this.commissioning();
      if (!bound) throw new StoreError('DOSIS_ERR_NOT_COMMISSIONED', 'this robot is not commissioned');
      const active = this.activeRoll();
      if (active) throw new StoreError('DOSIS_ERR_ROLL_LOADED', `roll ${active.rollId} is loaded: unload it (with its receipt) first`);
      const now = this.#clock.now();
      this.db.prepare('UPDATE commissioning SET decommissioned_at_ms = ?, decommissioned_by = ? WHERE decommissioned_at_ms IS NULL').run(now, staffId);
      this.#logAt(now, 'robot_decommissioned', null, { citizenId: bound.citizenId, staffId });
      return bound;
    });
  }

  isAdmin(staffId: string): boolean {
    return this.db.prepare(`SELECT 1 FROM staff_role WHERE staff_id = ? AND role = 'admin'`).get(staffId) !== undefined;
  }

  setAdmin(staffId: string, admin: boolean): void {
    if (admin) this.db.prepare(`INSERT INTO staff_role (staff_id, role) VALUES (?, 'admin') ON CONFLICT (staff_id) DO NOTHING`).run(staffId);
    else this.db.prepare('DELETE FROM staff_role WHERE staff_id = ?').run(staffId);
    this.log('staff_role_set', null, { staffId, admin });
  }

  // ------------------------------------------------------------ care: pause, travel, withdrawal

  /** The pause in force or still to come, if any. */
  activePause(): Pause | undefined {
    const r = this.db.prepare('SELECT * FROM pauses WHERE ended_at_ms IS NULL AND until_ms > ? ORDER BY from_ms LIMIT 1').get(this.#clock.now()) as
      | { n: number; from_ms: number; until_ms: number; reason: string; staff_id: string; ended_at_ms: number | null }
      | undefined;
    return r && { n: r.n, fromMs: r.from_ms, untilMs: r.until_ms, reason: r.reason, staffId: r.staff_id, endedAtMs: r.ended_at_ms };
  }

  /**
   * Pauses dispensing from `fromMs` to the expected end `untilMs` (a hospital stay): the scheduled doses due in that
   * span are suspended, and the alarm centre is told to expect nothing from the robot in it.
   */
  pause(o: { fromMs: number; untilMs: number; reason: string; staffId: string }): { pause: Pause; suspended: DoseRow[] } {
    return this.#tx(() => {
      const now = this.#clock.now();
      if (!(o.untilMs > o.fromMs)) throw new StoreError('DOSIS_ERR_PAUSE_SPAN', 'a pause must end after it starts');
      if (o.untilMs <= now) throw new StoreError('DOSIS_ERR_PAUSE_SPAN', 'a pause must end in the future');
      if (this.activePause()) throw new StoreError('DOSIS_ERR_PAUSED', 'the robot is already paused: end that pause first');
      const r = this.db.prepare('INSERT INTO pauses (from_ms, until_ms, reason, staff_id) VALUES (?, ?, ?, ?)').run(o.fromMs, o.untilMs, o.reason, o.staffId);
      const n = Number(r.lastInsertRowid);
      const suspended = this.#care('suspended', `FROM doses WHERE state = 'scheduled' AND intake_at_ms >= ? AND intake_at_ms < ?`, [Math.max(o.fromMs, now), o.untilMs], now);
      // Why the citizen is away (a hospital stay) is health data: it stays in the pause's row, out of the log and the centre's event.
      this.#logAt(now, 'care_paused', null, { pause: n, fromMs: o.fromMs, untilMs: o.untilMs, staffId: o.staffId, suspended: suspended.length });
      const key = pauseKey(n, o.fromMs);
      enqueueOutbox(this.db, { eventId: `pause-${key}:care_paused`, type: 'care_paused', occurredAtMs: now, payload: { pause: key, fromMs: o.fromMs, untilMs: o.untilMs } });
      return { pause: { n, fromMs: o.fromMs, untilMs: o.untilMs, reason: o.reason, staffId: o.staffId, endedAtMs: null }, suspended };
    });
  }

  /** Ends the pause now (the citizen is home): its doses still to come are scheduled again; the centre is told. */
  endPause(staffId: string): { pause: Pause; resumed: DoseRow[] } {
    return this.#tx(() => {
      const p = this.activePause();
      if (!p) throw new StoreError('DOSIS_ERR_NOT_PAUSED', 'the robot is not paused');
      const now = this.#clock.now();
      this.db.prepare('UPDATE pauses SET ended_at_ms = ?, ended_by = ? WHERE n = ?').run(now, staffId, p.n);
      const where = `FROM doses WHERE state = 'suspended' AND intake_at_ms > ? AND intake_at_ms < ?`;
      const resumed = (selectDoses(this.db, `${where} ORDER BY intake_at_ms, position`).all(now, p.untilMs) as RawDose[]).map(toDose);
      this.db.prepare(`UPDATE doses SET state = 'scheduled', final_at_ms = NULL ${where.replace(/^FROM doses/, '')}`).run(now, p.untilMs);
      this.#logAt(now, 'care_resumed', null, { pause: p.n, staffId, resumed: resumed.length });
      const key = pauseKey(p.n, p.fromMs);
      enqueueOutbox(this.db, { eventId: `pause-${key}:care_resumed`, type: 'care_resumed', occurredAtMs: now, payload: { pause: key, fromMs: p.fromMs, untilMs: p.untilMs } });
      return { pause: { ...p, endedAtMs: now }, resumed };
    });
  }

  /** Releases the next `count` doses ahead of time, in order, for a travel pack: none of them is reminded or dispensed here. */
  releaseForTravel(count: number, staffId: string): DoseRow[] {
    return this.#tx(() => {
      if (!Number.isInteger(count) || count < 1) throw new StoreError('DOSIS_ERR_TRAVEL_COUNT', 'release at least one dose');
      const now = this.#clock.now();
      const rows = this.#care('travel', `FROM doses WHERE state = 'scheduled' ORDER BY intake_at_ms, position LIMIT ?`, [count], now);
      if (rows.length < count) throw new StoreError('DOSIS_ERR_TRAVEL_COUNT', `only ${rows.length} doses are left to release`);
      this.#logAt(now, 'care_travel', null, { staffId, doses: rows.map((d) => d.doseId) });
      return rows;
    });
  }

  /** Withdraws doses on a prescription change: every scheduled one from `fromMs` on, or the ones named. They are never dispensed. */
  withdraw(which: { fromMs: number } | { doseIds: readonly string[] }, staffId: string): DoseRow[] {
    return this.#tx(() => {
      const now = this.#clock.now();
      let rows: DoseRow[];
      if ('fromMs' in which) {
        rows = this.#care('withdrawn', `FROM doses WHERE state = 'scheduled' AND intake_at_ms >= ?`, [which.fromMs], now);
      } else {
        rows = [];
        for (const id of which.doseIds) {
          const d = this.dose(id);
          if (!d || d.state !== 'scheduled') throw new StoreError('DOSIS_ERR_NOT_WITHDRAWABLE', `dose ${id} is not waiting to be dispensed`);
          rows.push(...this.#care('withdrawn', 'FROM doses WHERE dose_id = ?', [id], now));
        }
      }
      this.#logAt(now, 'care_withdrawn', null, { staffId, doses: rows.map((d) => d.doseId) });
      return rows;
    });
  }

  /** Moves the doses `from` selects to a care state, one event-log row each; returns them as they were. */
  #care(state: CareState, from: string, params: readonly unknown[], now: number): DoseRow[] {
    const rows = (selectDoses(this.db, from).all(...params) as RawDose[]).map(toDose);
    const set = this.db.prepare(`UPDATE doses SET state = ?, final_at_ms = ? WHERE dose_id = ? AND state = 'scheduled'`);
    for (const d of rows) {
      set.run(state, now, d.doseId);
      this.#logAt(now, `dose_${state}`, d.doseId, null);
    }
    return rows;
  }

  // ------------------------------------------------------------ doses

  dose(doseId: string): DoseRow | undefined {
    const r = this.#q.dose.get(doseId) as RawDose | undefined;
    return r && toDose(r);
  }

  /** Doses not yet final, by intake time (the first `limit` of them). */
  openDoses(limit = -1): DoseRow[] {
    return (this.#q.open(limit).all() as RawDose[]).map(toDose);
  }

  /** The first `limit` open doses with the columns the robot's status shows (fewer than openDoses). */
  openHeads(limit: number): OpenHead[] {
    return (this.#q.heads(limit).all() as { dose_id: string; intake_at_ms: number; pill_count: number; state: DoseState }[]).map((r) => ({
      doseId: r.dose_id, intakeAtMs: r.intake_at_ms, pillCount: r.pill_count, state: r.state,
    }));
  }

  /** Pouches of the active roll still to come (scheduled). */
  remainingPouches(): DoseRow[] {
    const active = this.activeRoll();
    if (!active) return [];
    return (this.#q.remaining.all(active.rollId) as RawDose[]).map(toDose);
  }

  /** How many pouches of the active roll are still to come and the last one's intake time (what remainingPouches() would say of them). */
  remainingCount(): { count: number; lastIntakeAtMs: number | null } | undefined {
    const active = this.activeRoll();
    if (!active) return undefined;
    const r = this.#q.remainingCount.get(active.rollId) as { n: number; last: number | null };
    return { count: r.n, lastIntakeAtMs: r.last };
  }

  /** The doses that ended at or after `sinceMs` (final_at_ms), returned pouches left out, in no particular order. */
  endingsSince(sinceMs: number): DoseEnding[] {
    return this.#q.endedSince.all(sinceMs) as DoseEnding[];
  }

  allDoses(): DoseRow[] {
    return (selectDoses(this.db, 'FROM doses ORDER BY intake_at_ms, position').all() as RawDose[]).map(toDose);
  }

  /**
   * Claims a scheduled dose for dispensing. Only a dose still 'scheduled' moves:
   * another process on the same file (`dosis roll unload`) may have returned it
   * since the machine last looked. Returns whether it moved; false means no motion.
   */
  startDispensing(doseId: string, attempts: number): boolean {
    return this.#tx(() => {
      const now = this.#clock.now();
      if (this.#q.claim.run(attempts, doseId, now).changes === 0) {
        const d = this.dose(doseId);
        if (d && d.state === 'scheduled' && d.useByMs !== null && now > d.useByMs) {
          // An expired pouch is never opened: the dose ends yellow with its own reason and the centre is told.
          this.finish(doseId, 'failed', { cls: 'yellow', reason: POUCH_EXPIRED, attempts });
          return false;
        }
        this.#log('dispense_not_started', doseId, { state: d?.state ?? null });
        return false;
      }
      this.#log('dispense_started', doseId, null);
      return true;
    });
  }

  /**
   * Whether the store outlives its process: a file (which another process may also commit to), or an image of one. False
   * for a private in-memory store (soaks without crashes, fast tests): no running mark, no watch for other processes.
   */
  get durable(): boolean {
    return !this.db.memory || this.#image;
  }

  /** SQLite's data_version: changes when another connection (another process) commits to the file. */
  dataVersion(): number {
    return this.#q.dataVersion.get() as number;
  }

  /** Back to waiting for the button: nothing left the pouch (e.g. a ROTATE the restarted MCU never ran). */
  resetToScheduled(doseId: string, why: string): void {
    this.#tx(() => {
      this.#q.setState.run('scheduled', 0, doseId);
      this.#log('dispense_abandoned', doseId, { why });
    });
  }

  /** The citizen asked for this dose inside its window (at most one dose is open at a time, so one key holds it). */
  markAsked(doseId: string): void {
    if (this.getMeta('asked_dose') !== doseId) this.#q.setMeta.run('asked_dose', doseId);
  }

  forgetAsked(doseId: string): void {
    if (this.getMeta('asked_dose') === doseId) this.#q.setMeta.run('asked_dose', '');
  }

  /** Whether the citizen asked for this dose (see markAsked). */
  asked(doseId: string): boolean {
    return this.getMeta('asked_dose') === doseId;
  }

  /** The right pills are in the cup: correct or green, waiting for the citizen to take the cup. */
  presented(doseId: string, o: { cls: 'correct' | 'green'; reason: string | null; countedPills: number; attempts: number }): void {
    this.#tx(() => {
      this.#q.present.run(o.cls, o.reason, o.countedPills, o.attempts, doseId);
      this.#q.setMeta.run('cup_dose', doseId);
      this.#log('dose_presented', doseId, { cls: o.cls, reason: o.reason, countedPills: o.countedPills, attempts: o.attempts });
    });
  }

  /**
   * Ends a dose for good, with its event-log row and, for missed and failed
   * doses (and taken-late ones), the alarm-outbox event, in one transaction.
   * A dose already final is left as it is: a dose ends once.
   */
  finish(doseId: string, final: FinalState, o: { cls?: DoseClass | null; reason?: string | null; countedPills?: number | null; attempts?: number } = {}): boolean {
    return this.#tx(() => {
      const now = this.#clock.now();
      // A dose already final is not matched: no row comes back.
      const row = this.#q.finish.get(final, o.cls ?? null, o.reason ?? null, o.countedPills ?? null, o.attempts ?? 0, now, doseId) as RawDose | undefined;
      if (!row) return false;
      const after = toDose(row);
      // A failed dose may have left pills in the cup: no dose goes in until the cup has been emptied.
      if (final === 'failed' && this.intents(doseId).some((i) => i.name !== 'ROTATE')) this.#q.setMeta.run('cup_dose', doseId);
      if (final === 'taken') this.#q.setMeta.run('cup_dose', '');
      this.#log(`dose_${final}`, doseId, { cls: after.cls, reason: after.reason, countedPills: after.countedPills, attempts: after.attempts });
      const type: OutboxEventType | null =
        final === 'missed' ? 'missed_dose' : final === 'failed' ? 'dose_failed' : after.overdue ? 'dose_taken_late' : null;
      if (type) {
        enqueueOutbox(this.db, {
          eventId: `${doseId}:${type}`, type, occurredAtMs: now, doseId,
          payload: { reason: after.reason, cls: after.cls, intakeAtMs: after.intakeAtMs, expectedPills: after.pillCount, countedPills: after.countedPills },
        });
      }
      return true;
    });
  }

  /** The dose is overdue: the alarm centre is told, once. */
  markOverdue(doseId: string): boolean {
    return this.#tx(() => {
      if (this.#q.overdue.run(doseId).changes === 0) return false;
      const d = this.dose(doseId)!;
      const now = this.#clock.now();
      this.#log('dose_overdue', doseId, null);
      enqueueOutbox(this.db, { eventId: `${doseId}:dose_overdue`, type: 'dose_overdue', occurredAtMs: now, doseId, payload: { intakeAtMs: d.intakeAtMs, state: d.state } });
      return true;
    });
  }

  // ------------------------------------------------------------ write-ahead intents

  /** Commits a motion's command id before the command is sent; returns the id. */
  recordIntent(doseId: string, name: IntentName, slot: number, bootId: string | null): string {
    return this.#tx(() => {
      const r = this.#q.intent.run(doseId, name, slot, this.#clock.now(), bootId);
      const n = Number(r.lastInsertRowid);
      const commandId = (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
      this.#q.intentId.run(commandId, n);
      return commandId;
    });
  }

  /** The MCU's answer to an intent (its outcome event or the reason it never ran). */
  completeIntent(commandId: string, result: string): void {
    this.#q.intentDone.run(result, commandId);
  }

  /** The last motion of a dose whose outcome the host never learnt. */
  pendingIntent(doseId: string): IntentRow | undefined {
    const r = this.#q.pending.get(doseId) as RawIntent | undefined;
    return r && toIntent(r);
  }

  intents(doseId: string): IntentRow[] {
    return (this.#q.intents.all(doseId) as RawIntent[]).map(toIntent);
  }

  // ------------------------------------------------------------ event log, meta

  /** Appends to the event log (pseudonymous ids and technical detail only). */
  log(type: string, doseId: string | null, detail: Record<string, unknown> | null): void {
    this.#log(type, doseId, detail);
  }

  /** An outbox event that is not about a dose's end (device faults, low supply); the id makes repeats no-ops. */
  alarm(eventId: string, type: OutboxEventType, doseId: string | null, payload: Record<string, string | number | boolean | null>): void {
    this.#tx(() => {
      this.#log(type, doseId, payload);
      enqueueOutbox(this.db, { eventId, type, occurredAtMs: this.#clock.now(), doseId: doseId ?? undefined, payload });
    });
  }

  recentEvents(limit: number): LoggedEvent[] {
    return (this.#q.recent(limit).all() as { id: number; at_ms: number; type: string; dose_id: string | null; detail_json: string | null }[]).map((r) => ({
      id: r.id, atMs: r.at_ms, type: r.type, doseId: r.dose_id, detail: r.detail_json ? (JSON.parse(r.detail_json) as Record<string, unknown>) : null,
    }));
  }

  /** The dose whose pills may still be in the cup (presented, or failed after a release), or null. */
  cupDose(): string | null {
    return this.getMeta('cup_dose') || null;
  }

  /**
   * The MCU's cup-lift counter (in STATUS and CUP events; it survives the MCU's resets). A count newer than the last
   * one seen means the cup was lifted since, whoever listened then: whatever was in it is gone. `uncertainDoseId` names
   * a dose that was being dispensed, so that such a lift may have come before or after its pills fell (see
   * DoseSpec.cupUnknown). Returns whether the count was news; the first count ever seen only sets where counting starts.
   */
  observeLifts(lifts: number, uncertainDoseId: string | null = null): boolean {
    return this.#tx(() => {
      const seen = this.getMeta('cup_lifts');
      const ahead = seen === undefined ? 0 : (lifts - Number(seen) + LIFTS_MODULO) % LIFTS_MODULO;
      // An older count (an event the MCU kept and sent again) is no news: counts only go forward.
      if (seen !== undefined && (ahead === 0 || ahead >= LIFTS_MODULO / 2)) return false;
      this.#q.setMeta.run('cup_lifts', String(lifts));
      if (seen === undefined) return false;
      if (uncertainDoseId) {
        this.#q.setMeta.run('cup_unknown', uncertainDoseId);
        this.#log('cup_lift_uncertain', uncertainDoseId, { lifts });
      }
      const d = this.cupDose();
      if (d) {
        this.#q.setMeta.run('cup_dose', '');
        this.#log('cup_emptied', d, { lifts });
      }
      return true;
    });
  }

  /** A dose whose pills a lift may or may not have taken (see observeLifts). */
  cupUnknown(doseId: string): boolean {
    return this.getMeta('cup_unknown') === doseId;
  }

  /** The cup was lifted: whatever was in it is gone. */
  cupLifted(): void {
    const d = this.cupDose();
    if (!d) return;
    this.#tx(() => {
      this.#q.setMeta.run('cup_dose', '');
      this.#log('cup_emptied', d, null);
    });
  }

  getMeta(key: string): string | undefined {
    return (this.#q.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.#q.setMeta.run(key, value);
  }

  outboxDepth(): number {
    return outboxDepth(this.db);
  }

  #log(type: string, doseId: string | null, detail: Record<string, unknown> | null): void {
    this.#logAt(this.#clock.now(), type, doseId, detail);
  }

  #logAt(atMs: number, type: string, doseId: string | null, detail: Record<string, unknown> | null): void {
    this.#q.log.run(atMs, type, doseId, detail ? JSON.stringify(detail) : null);
  }
}

type RawIntent = { n: number; command_id: string; dose_id: string; name: IntentName; slot: number; sent_at_ms: number; result: string | null; boot_id: string | null };
const toIntent = (r: RawIntent): IntentRow => ({ commandId: r.command_id, doseId: r.dose_id, name: r.name, slot: r.slot, sentAtMs: r.sent_at_ms, result: r.result, bootId: r.boot_id });

// Events in, alerts out: ingestion with deduplication and folding, the alert lifecycle, escalation and supervision.
//
// Every change is one transaction that also appends an audit row and bumps the
// alert's version; escalation state lives in the database so a restart loses none.
import { createHash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import type { AlarmConfig } from '../config.js';
import { AlarmError, conflict, forbidden, notFound } from '../errors.js';
import { forgetSignaturesBefore, roleAtLeast, type Role } from './accounts.js';

export type DeviceEvent = {
  eventId: string;
  seq: number;
  type: string;
  occurredAtMs: number;
  doseId?: string | undefined;
  payload: Record<string, string | number | boolean | null>;
};
export type IngestStatus = 'stored' | 'duplicate' | 'conflict';
export type AlertState = 'open' | 'claimed' | 'escalated' | 'resolved' | 'cancelled';
export type Alert = {
  id: number; deviceId: string; type: string; urgency: number; doseId: string | null; state: AlertState;
  openedAtMs: number; claimedBy: string | null; claimedAtMs: number | null; escalatedAtMs: number | null;
  resolvedAtMs: number | null; outcome: string | null; reportCount: number; notifyCount: number;
  contactAttempts: number; version: number;
};

const LIVE = `state IN ('open', 'claimed', 'escalated')`;
/** Which alert a report folds into, and how urgent it is (higher first). */
const OPENS: Record<string, { fold: (e: DeviceEvent) => string; urgency: number }> = {
  missed_dose: { fold: (e) => `dose:${e.doseId ?? e.eventId}`, urgency: 90 },
  dose_failed: { fold: (e) => `dose:${e.doseId ?? e.eventId}`, urgency: 80 },
  dose_overdue: { fold: (e) => `dose:${e.doseId ?? e.eventId}`, urgency: 60 },
  device_fault: { fold: () => 'fault', urgency: 70 },
  power_lost: { fold: () => 'power', urgency: 50 },
  low_supply: { fold: () => 'supply', urgency: 20 },
  device_silent: { fold: () => 'silent', urgency: 75 },
};
/** Reports that cancel an unclaimed alert (the problem went away before anyone picked it up). */
const CANCELS: Record<string, (e: DeviceEvent) => string> = {
  dose_taken_late: (e) => `dose:${e.doseId ?? ''}`,
  fault_cleared: () => 'fault',
  power_restored: () => 'power',
};

// The ingestion path runs these for every event; preparing them once per database saves most of its SQLite time.
const prepared = new WeakMap<Db, Map<string, Statement>>();
function sql(db: Db, text: string): Statement {
  let m = prepared.get(db);
  if (!m) prepared.set(db, (m = new Map()));
  let s = m.get(text);
  if (!s) m.set(text, (s = db.prepare(text)));
  return s;
}

export const eventHash = (e: DeviceEvent) =>
  createHash('sha256').update(JSON.stringify([e.eventId, e.seq, e.type, e.occurredAtMs, e.doseId ?? null, e.payload])).digest('hex');

function audit(db: Db, atMs: number, actor: string, action: string, alertId: number | null, deviceId: string | null, version: number | null, detail?: unknown) {
  sql(db, 'INSERT INTO audit (at_ms, actor, action, alert_id, device_id, version, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    atMs, actor, action, alertId, deviceId, version, detail === undefined ? null : JSON.stringify(detail),
  );
}

const SILENCED = 'SELECT 1 FROM silences WHERE device_id = ? AND starts_at_ms <= ? AND ends_at_ms > ? AND ended_early_at_ms IS NULL';

export function isSilenced(db: Db, deviceId: string, nowMs: number): boolean {
  return !!sql(db, SILENCED).get(deviceId, nowMs, nowMs);
}

/**
 * Folds a report into the device's live alert of its kind, or opens one, unless the device is silenced (then null).
 * The common case, a fold, is one statement: the update that counts the report also finds the alert and checks the
 * silence, and returns what the audit row needs.
 */
function openOrFold(db: Db, deviceId: string, type: string, doseId: string | null, fold: string, urgency: number, nowMs: number, detail: unknown): number | null {
  const live = sql(db, `UPDATE alerts SET report_count = report_count + 1, version = version + 1 WHERE device_id = ? AND fold_key = ? AND ${LIVE}
    AND NOT EXISTS (${SILENCED}) RETURNING id, urgency, version`).get(deviceId, fold, deviceId, nowMs, nowMs) as { id: number; urgency: number; version: number } | undefined;
  if (live) {
    // Only when it rises, so the queue's index on urgency is not rewritten for every report.
    if (urgency > live.urgency) sql(db, 'UPDATE alerts SET urgency = ?, type = ? WHERE id = ?').run(urgency, type, live.id);
    audit(db, nowMs, 'device', 'alert.folded', live.id, deviceId, live.version, detail);
    return live.id;
  }
  const r = sql(db, `INSERT INTO alerts (device_id, fold_key, type, urgency, dose_id, state, opened_at_ms, last_notified_at_ms)
    SELECT ?, ?, ?, ?, ?, 'open', ?, ? WHERE NOT EXISTS (${SILENCED})`).run(deviceId, fold, type, urgency, doseId, nowMs, nowMs, deviceId, nowMs, nowMs);
  if (r.changes === 0) return null;
  const id = Number(r.lastInsertRowid);
  audit(db, nowMs, 'device', 'alert.opened', id, deviceId, 1, detail);
  return id;
}

/**
 * The robot's staff paused it (a hospital stay): the device is silenced for exactly the pause's span, and the
 * silence ends when the robot says the pause ended. Keyed by the robot's pause number, so a repeat changes nothing.
 */
function carePause(db: Db, deviceId: string, e: DeviceEvent, nowMs: number): void {
  const { pause, fromMs, untilMs } = e.payload as { pause?: unknown; fromMs?: unknown; untilMs?: unknown };
  if ((typeof pause !== 'number' && typeof pause !== 'string') || typeof fromMs !== 'number' || typeof untilMs !== 'number' || !(untilMs > fromMs)) return;
  const reason = `care_pause:${pause}`;
  if (e.type === 'care_paused') {
    if (db.prepare('SELECT 1 FROM silences WHERE device_id = ? AND reason = ?').get(deviceId, reason)) return;
    const r = db.prepare("INSERT INTO silences (device_id, reason, starts_at_ms, ends_at_ms, created_by) VALUES (?, ?, ?, ?, 'device')").run(deviceId, reason, fromMs, untilMs);
    audit(db, nowMs, 'device', 'silence.added', null, deviceId, null, { silenceId: Number(r.lastInsertRowid), reason, endsAtMs: untilMs });
  } else {
    const r = db.prepare('UPDATE silences SET ended_early_at_ms = ? WHERE device_id = ? AND reason = ? AND ended_early_at_ms IS NULL').run(nowMs, deviceId, reason);
    if (r.changes > 0) audit(db, nowMs, 'device', 'silence.ended', null, deviceId, null, { reason });
  }
}

type Ingested = { eventId: string; status: IngestStatus; alertId: number | null };

/**
 * Stores a batch in one transaction; the caller answers 2xx only after this returns (after COMMIT). Inside a
 * transaction already (the group commit's savepoint for the request) it runs as part of it, with no savepoint of its own.
 */
export function ingestEvents(db: Db, deviceId: string, events: DeviceEvent[], nowMs: number): Ingested[] {
  if (db.inTransaction) return ingestNow(db, deviceId, events, nowMs);
  let tx = ingestTransactions.get(db);
  if (!tx) ingestTransactions.set(db, (tx = db.transaction(ingestNow)));
  return tx(db, deviceId, events, nowMs);
}

const ingestTransactions = new WeakMap<Db, (db: Db, deviceId: string, events: DeviceEvent[], nowMs: number) => Ingested[]>();

function ingestNow(db: Db, deviceId: string, events: DeviceEvent[], nowMs: number): Ingested[] {
  const out: Ingested[] = [];
  for (const e of events) {
    const hash = eventHash(e);
    const prior = sql(db, 'SELECT body_hash, alert_id FROM events WHERE device_id = ? AND event_id = ?').get(deviceId, e.eventId) as
      | { body_hash: string; alert_id: number | null } | undefined;
    if (prior) {
      out.push({ eventId: e.eventId, status: prior.body_hash === hash ? 'duplicate' : 'conflict', alertId: prior.alert_id });
      continue;
    }
    let alertId: number | null = null;
    const detail = { eventId: e.eventId, type: e.type, seq: e.seq };
    const opens = OPENS[e.type];
    const cancels = CANCELS[e.type];
    if (e.type === 'care_paused' || e.type === 'care_resumed') carePause(db, deviceId, e, nowMs);
    if (opens) {
      alertId = openOrFold(db, deviceId, e.type, e.doseId ?? null, opens.fold(e), opens.urgency, nowMs, detail);
    } else if (cancels) {
      const live = sql(db, `SELECT id, state, version FROM alerts WHERE device_id = ? AND fold_key = ? AND ${LIVE}`).get(deviceId, cancels(e)) as
        | { id: number; state: AlertState; version: number } | undefined;
      if (live) {
        alertId = live.id;
        if (live.state === 'open') {
          sql(db, `UPDATE alerts SET state = 'cancelled', outcome = ?, resolved_at_ms = ?, version = version + 1 WHERE id = ?`).run(e.type, nowMs, live.id);
          audit(db, nowMs, 'device', 'alert.cancelled', live.id, deviceId, live.version + 1, detail);
        } else {
          // Someone is already on it: tell them, do not pull the alert away.
          sql(db, 'UPDATE alerts SET report_count = report_count + 1, version = version + 1 WHERE id = ?').run(live.id);
          audit(db, nowMs, 'device', 'alert.noted', live.id, deviceId, live.version + 1, detail);
        }
      }
    }
    sql(db, 'INSERT INTO events (device_id, event_id, seq, type, occurred_at_ms, dose_id, payload_json, body_hash, received_at_ms, alert_id) VALUES (?,?,?,?,?,?,?,?,?,?)')
      .run(deviceId, e.eventId, e.seq, e.type, e.occurredAtMs, e.doseId ?? null, JSON.stringify(e.payload), hash, nowMs, alertId);
    sql(db, 'UPDATE devices SET max_seq = max(max_seq, ?), last_seq = ?, event_count = event_count + 1 WHERE id = ?').run(e.seq, e.seq, deviceId);
    out.push({ eventId: e.eventId, status: 'stored', alertId });
  }
  return out;
}

export type Heartbeat = {
  sentAtMs: number;
  outboxDepth: number;
  link: string;
  mcu: string;
  firmwareVersion: string;
  report?: DayFigures | undefined;
  previousReport?: DayFigures | undefined;
};
type DayFigures = { day: string; dosings: number; pills: number; correct: number; green: number; yellow: number; missed: number; taken: number; failed?: number | undefined };

/** One transaction, or part of the caller's (the group commit's) without a savepoint of its own, like ingestEvents. */
export function recordHeartbeat(db: Db, deviceId: string, hb: Heartbeat, nowMs: number): void {
  if (db.inTransaction) return heartbeatNow(db, deviceId, hb, nowMs);
  db.transaction(heartbeatNow)(db, deviceId, hb, nowMs);
}

function heartbeatNow(db: Db, deviceId: string, hb: Heartbeat, nowMs: number): void {
  const { report, previousReport, ...health } = hb;
  sql(db, 'UPDATE devices SET last_heartbeat_at_ms = ?, heartbeat_json = ? WHERE id = ?').run(nowMs, JSON.stringify(health), deviceId);
  // Counts are a day's running totals (the day before's final), so a repeated heartbeat overwrites rather than adds.
  for (const r of [previousReport, report]) {
    if (!r) continue;
    sql(db, `INSERT INTO daily_reports (device_id, day, dosings, pills, correct, green, yellow, missed, taken, failed) VALUES (?,?,?,?,?,?,?,?,?,?)
      ON CONFLICT (device_id, day) DO UPDATE SET dosings=excluded.dosings, pills=excluded.pills, correct=excluded.correct, green=excluded.green,
      yellow=excluded.yellow, missed=excluded.missed, taken=excluded.taken, failed=excluded.failed`)
      .run(deviceId, r.day, r.dosings, r.pills, r.correct, r.green, r.yellow, r.missed, r.taken, r.failed ?? 0);
  }
  const silent = sql(db, `SELECT id, version FROM alerts WHERE device_id = ? AND fold_key = 'silent' AND ${LIVE}`).get(deviceId) as { id: number; version: number } | undefined;
  if (silent) {
    sql(db, `UPDATE alerts SET state = 'resolved', outcome = 'heartbeat_resumed', resolved_at_ms = ?, version = version + 1 WHERE id = ?`).run(nowMs, silent.id);
    audit(db, nowMs, 'system', 'alert.resolved', silent.id, deviceId, silent.version + 1, { outcome: 'heartbeat_resumed' });
  }
}

type Row = Record<string, unknown>;
const toAlert = (r: Row): Alert => ({
  id: r.id as number, deviceId: r.device_id as string, type: r.type as string, urgency: r.urgency as number, doseId: (r.dose_id as string) ?? null,
  state: r.state as AlertState, openedAtMs: r.opened_at_ms as number, claimedBy: (r.claimed_by as string) ?? null,
  claimedAtMs: (r.claimed_at_ms as number) ?? null, escalatedAtMs: (r.escalated_at_ms as number) ?? null,
  resolvedAtMs: (r.resolved_at_ms as number) ?? null, outcome: (r.outcome as string) ?? null, reportCount: r.report_count as number,
  notifyCount: r.notify_count as number, contactAttempts: r.contact_attempts as number, version: r.version as number,
});

export function getAlert(db: Db, id: number): Alert {
  const r = db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as Row | undefined;
  if (!r) throw notFound(`alert ${id}`);
  return toAlert(r);
}

export const PRIORITIES = ['high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
/**
 * Alarm priority after IEC 60601-1-8: high for a dose not taken or not given and for a robot gone silent, low for a
 * supply running out, medium for the rest. An alert left unclaimed for `riseAfterMs` rises one level.
 */
export const TYPE_PRIORITY: Record<string, Priority> = {
  missed_dose: 'high', dose_failed: 'high', device_silent: 'high',
  dose_overdue: 'medium', device_fault: 'medium', power_lost: 'medium',
  low_supply: 'low',
};
const BASE_RANK_SQL = `(CASE type ${Object.entries(TYPE_PRIORITY).map(([t, p]) => `WHEN '${t}' THEN ${3 - PRIORITIES.indexOf(p)}`).join(' ')} ELSE 2 END)`;
/** 3 high, 2 medium, 1 low; bound parameters: now, riseAfterMs. */
const RANK_SQL = `min(3, ${BASE_RANK_SQL} + (CASE WHEN state IN ('open', 'escalated') AND claimed_by IS NULL AND ? - opened_at_ms >= ? THEN 1 ELSE 0 END))`;
const rankToPriority = (r: number): Priority => PRIORITIES[3 - r]!;

export const ALERT_STATES = ['open', 'claimed', 'escalated', 'resolved', 'cancelled'] as const;
export type QueueQuery = {
  /** Live alerts only (the default) or every alert. */
  live: boolean;
  state?: AlertState | undefined;
  priority?: Priority | undefined;
  type?: string | undefined;
  deviceId?: string | undefined;
  /** The asking operator: the live alerts they hold come first, so no newer alert pushes one off their page. */
  holder?: string | undefined;
  offset: number;
  limit: number;
};
export type QueuedAlert = Alert & { priority: Priority; district: string | null };
export type QueuePage = { total: number; offset: number; alerts: QueuedAlert[]; counts: Record<Priority, number>; unclaimed: Record<Priority, number> };

/**
 * One page of the queue with the true number of alerts the filters match. The live queue is ordered by the alerts the
 * asking operator holds, then priority (risen ones included), urgency and age; `counts` are the live alerts per
 * priority, whatever the filters.
 */
export function listAlerts(db: Db, q: QueueQuery, nowMs: number, riseAfterMs: number): QueuePage {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.live) where.push(LIVE);
  if (q.state) (where.push('state = ?'), args.push(q.state));
  if (q.type) (where.push('type = ?'), args.push(q.type));
  if (q.deviceId) (where.push('device_id = ?'), args.push(q.deviceId));
  if (q.priority) (where.push(`${RANK_SQL} = ?`), args.push(nowMs, riseAfterMs, 3 - PRIORITIES.indexOf(q.priority)));
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const order = q.live ? 'held DESC, rank DESC, urgency DESC, opened_at_ms ASC, id ASC' : 'id DESC';
  const total = (db.prepare(`SELECT count(*) AS n FROM alerts ${w}`).get(...args) as { n: number }).n;
  const rows = db.prepare(`SELECT a.*, ${RANK_SQL} AS rank, coalesce(a.claimed_by = ?, 0) AS held, d.district AS district FROM alerts a
    LEFT JOIN devices d ON d.id = a.device_id ${w.replaceAll('device_id', 'a.device_id')} ORDER BY ${order} LIMIT ? OFFSET ?`)
    .all(nowMs, riseAfterMs, q.holder ?? null, ...args, q.limit, q.offset) as Row[];
  const counts: Record<Priority, number> = { high: 0, medium: 0, low: 0 };
  const unclaimed: Record<Priority, number> = { high: 0, medium: 0, low: 0 };
  const byRank = db.prepare(`SELECT ${RANK_SQL} AS rank, claimed_by IS NULL AS free, count(*) AS n FROM alerts WHERE ${LIVE} GROUP BY rank, free`).all(nowMs, riseAfterMs) as
    { rank: number; free: number; n: number }[];
  for (const c of byRank) {
    counts[rankToPriority(c.rank)] += c.n;
    if (c.free) unclaimed[rankToPriority(c.rank)] += c.n;
  }
  return {
    total, offset: q.offset, counts, unclaimed,
    alerts: rows.map((r) => ({ ...toAlert(r), priority: rankToPriority(r.rank as number), district: (r.district as string | null) ?? null })),
  };
}

export type Actor = { username: string; role: Role };
export type AlertAction =
  | { kind: 'claim' }
  | { kind: 'contact'; result: string; note?: string | undefined }
  | { kind: 'escalate'; note?: string | undefined }
  | { kind: 'resolve'; outcome: string; note?: string | undefined };

/** Applies an operator's action if `version` is current; stale versions and wrong states are 409s. */
export function actOnAlert(db: Db, id: number, version: number, actor: Actor, action: AlertAction, nowMs: number): Alert {
  return db.transaction(() => {
    const a = getAlert(db, id);
    if (a.version !== version) throw conflict(`alert ${id} is at version ${a.version}, not ${version}`);
    const mine = a.claimedBy === actor.username;
    let set = '';
    let args: unknown[] = [];
    switch (action.kind) {
      case 'claim':
        if (a.state === 'open') {
          set = `state = 'claimed', claimed_by = ?, claimed_at_ms = ?, last_notified_at_ms = ?`;
        } else if (a.state === 'escalated' && !mine) {
          if (!roleAtLeast(actor.role, 'supervisor')) throw forbidden('escalated alerts are claimed by a supervisor');
          set = `state = 'claimed', claimed_by = ?, claimed_at_ms = ?, last_notified_at_ms = ?`;
        } else throw conflict(`alert ${id} is ${a.state}`);
        args = [actor.username, nowMs, nowMs];
        break;
      case 'contact':
        if (a.state !== 'claimed' || !mine) throw conflict('log contact attempts on an alert you have claimed');
        set = 'contact_attempts = contact_attempts + 1';
        break;
      case 'escalate':
        if (a.state !== 'claimed' || !mine) throw conflict('escalate an alert you have claimed');
        set = `state = 'escalated', escalated_at_ms = ?, claimed_by = NULL, last_notified_at_ms = ?`;
        args = [nowMs, nowMs];
        break;
      case 'resolve':
        if (!(a.state === 'claimed' && mine) && !(a.state !== 'resolved' && a.state !== 'cancelled' && roleAtLeast(actor.role, 'supervisor')))
          throw conflict('resolve an alert you have claimed');
        set = `state = 'resolved', outcome = ?, resolved_at_ms = ?`;
        args = [action.outcome, nowMs];
        break;
    }
    db.prepare(`UPDATE alerts SET ${set}, version = version + 1 WHERE id = ? AND version = ?`).run(...args, id, version);
    const { kind, ...detail } = action;
    audit(db, nowMs, actor.username, `alert.${kind}`, id, a.deviceId, version + 1, detail);
    return getAlert(db, id);
  })();
}

/** A citizen's contact details, only for the operator who holds the alert; every read is audited. */
export function readContact(db: Db, id: number, actor: Actor, nowMs: number): Record<string, string> {
  return db.transaction(() => {
    const a = getAlert(db, id);
    if (a.claimedBy !== actor.username || a.state !== 'claimed') throw forbidden('contact details are shown to the operator who claimed the alert');
    const row = db.prepare('SELECT contact_json FROM device_contacts WHERE device_id = ?').get(a.deviceId) as { contact_json: string } | undefined;
    audit(db, nowMs, actor.username, 'contact.read', id, a.deviceId, a.version);
    return row ? (JSON.parse(row.contact_json) as Record<string, string>) : {};
  })();
}

export function setContact(db: Db, deviceId: string, contact: Record<string, string>, actor: string, nowMs: number): void {
  db.transaction(() => {
    if (!db.prepare('SELECT 1 FROM devices WHERE id = ?').get(deviceId)) throw notFound(`device ${deviceId}`);
    db.prepare('INSERT INTO device_contacts (device_id, contact_json) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET contact_json = excluded.contact_json').run(deviceId, JSON.stringify(contact));
    audit(db, nowMs, actor, 'contact.set', null, deviceId, null);
  })();
}

/** Adds a silence; it must end in the future and at most `maxDays` days from now. */
export function addSilence(db: Db, deviceId: string, reason: string, endsAtMs: number, actor: string, nowMs: number, maxDays: number): number {
  if (endsAtMs <= nowMs) throw new AlarmError('DOSIS_ERR_VALIDATION', 400, 'a silence must end in the future');
  if (endsAtMs > nowMs + maxDays * 24 * 3600_000) throw new AlarmError('DOSIS_ERR_VALIDATION', 400, `a silence may last at most ${maxDays} days`);
  return db.transaction(() => {
    if (!db.prepare('SELECT 1 FROM devices WHERE id = ?').get(deviceId)) throw notFound(`device ${deviceId}`);
    const r = db.prepare('INSERT INTO silences (device_id, reason, starts_at_ms, ends_at_ms, created_by) VALUES (?, ?, ?, ?, ?)').run(deviceId, reason, nowMs, endsAtMs, actor);
    audit(db, nowMs, actor, 'silence.added', null, deviceId, null, { silenceId: Number(r.lastInsertRowid), reason, endsAtMs });
    return Number(r.lastInsertRowid);
  })();
}

export function endSilence(db: Db, silenceId: number, actor: string, nowMs: number): void {
  db.transaction(() => {
    const s = db.prepare('SELECT device_id FROM silences WHERE id = ? AND ended_early_at_ms IS NULL').get(silenceId) as { device_id: string } | undefined;
    if (!s) throw notFound(`silence ${silenceId}`);
    db.prepare('UPDATE silences SET ended_early_at_ms = ? WHERE id = ?').run(nowMs, silenceId);
    audit(db, nowMs, actor, 'silence.ended', null, s.device_id, null, { silenceId });
  })();
}

export function listSilences(db: Db, nowMs: number) {
  return db.prepare('SELECT id, device_id AS deviceId, reason, starts_at_ms AS startsAtMs, ends_at_ms AS endsAtMs, created_by AS createdBy FROM silences WHERE ended_early_at_ms IS NULL AND ends_at_ms > ? ORDER BY ends_at_ms').all(nowMs) as {
    id: number; deviceId: string; reason: string; startsAtMs: number; endsAtMs: number; createdBy: string;
  }[];
}

export type DeviceHealth = {
  deviceId: string; district: string | null; status: 'ok' | 'late' | 'silent' | 'never_seen'; lastHeartbeatAtMs: number | null; outboxDepth: number | null;
  link: string | null; mcu: string | null; firmwareVersion: string | null; maxSeq: number; missingSeqs: number; lowSupply: boolean; silenced: boolean;
};

export function deviceHealth(db: Db, cfg: AlarmConfig, nowMs: number): DeviceHealth[] {
  const rows = db.prepare(`SELECT d.*, (SELECT count(DISTINCT seq) FROM events e WHERE e.device_id = d.id) AS seqs,
    EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = d.id AND a.fold_key = 'supply' AND a.${LIVE}) AS low FROM devices d ORDER BY d.id`).all() as Row[];
  return rows.map((r) => {
    const hb = r.heartbeat_json ? (JSON.parse(r.heartbeat_json as string) as Heartbeat) : undefined;
    const last = (r.last_heartbeat_at_ms as number | null) ?? null;
    const age = last === null ? Infinity : nowMs - last;
    const status = last === null ? 'never_seen' : age > 3 * cfg.heartbeatIntervalMs ? 'silent' : age > 2 * cfg.heartbeatIntervalMs ? 'late' : 'ok';
    return {
      deviceId: r.id as string, district: (r.district as string | null) ?? null, status, lastHeartbeatAtMs: last, outboxDepth: hb?.outboxDepth ?? null, link: hb?.link ?? null, mcu: hb?.mcu ?? null,
      firmwareVersion: hb?.firmwareVersion ?? null, maxSeq: r.max_seq as number, missingSeqs: (r.max_seq as number) - (r.seqs as number),
      lowSupply: !!r.low, silenced: isSilenced(db, r.id as string, nowMs),
    };
  });
}

/** One scheduler pass: re-notify, escalate, remind, supervise. Returns how many changes it made. */
export function runEscalation(db: Db, cfg: AlarmConfig, nowMs: number): number {
  return db.transaction(() => {
    let changes = 0;
    const bump = (id: number, deviceId: string, version: number, set: string, args: unknown[], action: string) => {
      db.prepare(`UPDATE alerts SET ${set}, version = version + 1 WHERE id = ?`).run(...args, id);
      audit(db, nowMs, 'system', action, id, deviceId, version + 1);
      changes++;
    };
    const open = db.prepare(`SELECT id, device_id, version, opened_at_ms, last_notified_at_ms FROM alerts WHERE state = 'open'`).all() as Row[];
    for (const a of open) {
      if (nowMs - (a.opened_at_ms as number) >= cfg.escalateAfterMs) {
        bump(a.id as number, a.device_id as string, a.version as number, `state = 'escalated', escalated_at_ms = ?, last_notified_at_ms = ?`, [nowMs, nowMs], 'alert.escalated');
      } else if (nowMs - (a.last_notified_at_ms as number) >= cfg.renotifyMs) {
        bump(a.id as number, a.device_id as string, a.version as number, 'notify_count = notify_count + 1, last_notified_at_ms = ?', [nowMs], 'alert.renotified');
      }
    }
    const held = db.prepare(`SELECT id, device_id, version, last_notified_at_ms FROM alerts WHERE state IN ('claimed', 'escalated')`).all() as Row[];
    for (const a of held) {
      if (nowMs - (a.last_notified_at_ms as number) >= cfg.remindMs) {
        bump(a.id as number, a.device_id as string, a.version as number, 'notify_count = notify_count + 1, last_notified_at_ms = ?', [nowMs], 'alert.reminded');
      }
    }
    // Supervision: only devices that have been heard from at least once.
    const quiet = db.prepare(`SELECT id FROM devices WHERE last_heartbeat_at_ms IS NOT NULL AND last_heartbeat_at_ms <= ?
      AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = devices.id AND a.fold_key = 'silent' AND a.${LIVE})`).all(nowMs - 3 * cfg.heartbeatIntervalMs) as { id: string }[];
    for (const d of quiet) {
      if (isSilenced(db, d.id, nowMs)) continue;
      openOrFold(db, d.id, 'device_silent', null, 'silent', OPENS.device_silent!.urgency, nowMs, { missedHeartbeats: 3 });
      changes++;
    }
    forgetSignaturesBefore(db, nowMs - 2 * cfg.signatureWindowMs);
    return changes;
  })();
}

export function auditTrail(db: Db, alertId: number) {
  return db.prepare('SELECT id, at_ms AS atMs, actor, action, version, detail_json AS detail FROM audit WHERE alert_id = ? ORDER BY id').all(alertId) as {
    id: number; atMs: number; actor: string; action: string; version: number | null; detail: string | null;
  }[];
}

/** The month (YYYY-MM) of an instant in `timeZone`. */
export function monthIn(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit' }).formatToParts(new Date(ms));
  return `${parts.find((p) => p.type === 'year')!.value}-${parts.find((p) => p.type === 'month')!.value}`;
}

/** Adherence as the soak report and the municipality count it: doses taken ÷ doses due (taken + missed + failed). */
export const adherence = (taken: number, missed: number, failed: number) => (taken + missed + failed > 0 ? taken / (taken + missed + failed) : null);

/**
 * Fleet figures per month: dosing counts from the robots' daily reports (robot-local days), alert counts and times
 * by the month the alert opened in the centre's time zone.
 */
export function fleetReport(db: Db, timeZone: string) {
  const dosing = db.prepare(`SELECT substr(day, 1, 7) AS month, sum(dosings) AS dosings, sum(pills) AS pills, sum(correct) AS correct,
    sum(green) AS green, sum(yellow) AS yellow, sum(missed) AS missed, sum(taken) AS taken, sum(failed) AS failed FROM daily_reports GROUP BY month ORDER BY month`).all() as Row[];
  // Summed per hour in SQL, then per month of the centre's time zone here: exact for whole-hour offsets, and a year
  // of alerts is at most 8,760 rows to look at whatever their number.
  const byMonth = new Map<string, { alerts: number; claimed: number; claimMs: number; resolved: number; resolveMs: number }>();
  const hours = db.prepare(`SELECT opened_at_ms / 3600000 AS h, count(*) AS n, count(claimed_at_ms) AS claimed, coalesce(sum(claimed_at_ms - opened_at_ms), 0) AS claimMs,
    count(resolved_at_ms) AS resolved, coalesce(sum(resolved_at_ms - opened_at_ms), 0) AS resolveMs FROM alerts GROUP BY h`).all() as
    { h: number; n: number; claimed: number; claimMs: number; resolved: number; resolveMs: number }[];
  for (const x of hours) {
    const m = monthIn(x.h * 3600_000, timeZone);
    const acc = byMonth.get(m) ?? { alerts: 0, claimed: 0, claimMs: 0, resolved: 0, resolveMs: 0 };
    byMonth.set(m, { alerts: acc.alerts + x.n, claimed: acc.claimed + x.claimed, claimMs: acc.claimMs + x.claimMs, resolved: acc.resolved + x.resolved, resolveMs: acc.resolveMs + x.resolveMs });
  }
  const months = new Set([...dosing.map((d) => d.month as string), ...byMonth.keys()]);
  const mean = (sum: number | undefined, n: number | undefined) => (n ? Math.round(sum! / n) : null);
  return [...months].sort().map((month) => {
    const d = dosing.find((x) => x.month === month);
    const a = byMonth.get(month);
    const n = (v: unknown) => (typeof v === 'number' ? v : 0);
    const dosings = n(d?.dosings);
    return {
      month, dosings, pills: n(d?.pills), correct: n(d?.correct), green: n(d?.green), yellow: n(d?.yellow),
      missed: n(d?.missed), failed: n(d?.failed), taken: n(d?.taken),
      accuracy: dosings > 0 ? 1 - (n(d?.green) + n(d?.yellow)) / dosings : null,
      adherence: adherence(n(d?.taken), n(d?.missed), n(d?.failed)),
      alerts: a?.alerts ?? 0, meanClaimMs: mean(a?.claimMs, a?.claimed), meanResolveMs: mean(a?.resolveMs, a?.resolved),
    };
  });
}

export type AdherenceRow = { month: string; group: string; taken: number; missed: number; failed: number; due: number; adherence: number | null };

/** Adherence per month, per month and robot, or per month and district (robots without one under `(none)`). */
export function adherenceReport(db: Db, by: 'month' | 'device' | 'district'): AdherenceRow[] {
  const group = by === 'month' ? `'all'` : by === 'device' ? 'r.device_id' : `coalesce(d.district, '(none)')`;
  const rows = db.prepare(`SELECT substr(r.day, 1, 7) AS month, ${group} AS grp, sum(r.taken) AS taken, sum(r.missed) AS missed, sum(r.failed) AS failed
    FROM daily_reports r LEFT JOIN devices d ON d.id = r.device_id GROUP BY month, grp ORDER BY month, grp`).all() as
    { month: string; grp: string; taken: number; missed: number; failed: number }[];
  return rows.map((r) => ({ month: r.month, group: r.grp, taken: r.taken, missed: r.missed, failed: r.failed, due: r.taken + r.missed + r.failed, adherence: adherence(r.taken, r.missed, r.failed) }));
}

/** RFC 4180 CSV; a cell that a spreadsheet would run as a formula is quoted with a leading apostrophe. */
export function toCsv(header: string[], rows: unknown[][]): string {
  const cell = (v: unknown) => {
    let t = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(t) && typeof v === 'string') t = `'${t}`;
    return /[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function setDistrict(db: Db, deviceId: string, district: string | null, actor: string, nowMs: number): void {
  db.transaction(() => {
    if (db.prepare('UPDATE devices SET district = ? WHERE id = ?').run(district, deviceId).changes === 0) throw notFound(`device ${deviceId}`);
    audit(db, nowMs, actor, 'device.district', null, deviceId, null, { district });
  })();
}

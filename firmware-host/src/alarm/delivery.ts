// The robot's delivery loop: drains the alarm outbox to the centre (at least once, oldest first) and sends heartbeats.
//
// Dispensing never waits for it: it only reads the outbox the dispensing store
// writes, every failure becomes a retry with backoff, and no method throws.
// The same event id goes out on every retry, so the centre can deduplicate.
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import { outboxDepth, peekOutbox, type OutboxRow } from './outbox.js';
import { markDelivered, markRefused, recordAttempt } from './delivery-store.js';
import { signedHeaders } from '../../../protocol/src/centre/signing.js';
import type { DeviceHealth } from '../../../protocol/src/centre/contract.js';

export type { DeviceHealth };

export type DeliveryOptions = {
  db: Database;
  clock: Clock;
  /** Base URL of the centre, e.g. http://127.0.0.1:8470 */
  url: string;
  deviceId: string;
  secret: string;
  logger: Logger;
  health: () => DeviceHealth;
  batchSize?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often the outbox is looked at when nothing kicked the loop. */
  pollMs?: number;
  requestTimeoutMs?: number;
  defaultHeartbeatMs?: number;
  random?: () => number;
  fetch?: typeof globalThis.fetch;
};

type Resolved = Required<Omit<DeliveryOptions, 'fetch'>> & { fetch: typeof globalThis.fetch };

export type DeliveryStats = { delivered: number; duplicates: number; conflicts: number; refused: number; failures: number; heartbeats: number };

/**
 * Answers that say the request itself is wrong, whenever it is sent: schema violation, too large, unprocessable.
 * Auth failures (401/403), rate limits (429) and server errors are about the moment, not the event: those are retried.
 */
const REFUSED_AS_MALFORMED = new Set([400, 413, 422]);

export class AlarmDelivery {
  readonly stats: DeliveryStats = { delivered: 0, duplicates: 0, conflicts: 0, refused: 0, failures: 0, heartbeats: 0 };
  #o: Resolved;
  #drainTimer: TimerHandle | undefined;
  #hbTimer: TimerHandle | undefined;
  #busy = false;
  #again = false;
  #running = false;
  #failures = 0;
  heartbeatIntervalMs: number;

  constructor(opts: DeliveryOptions) {
    this.#o = {
      batchSize: 50, baseBackoffMs: 1_000, maxBackoffMs: 300_000, pollMs: 30_000, requestTimeoutMs: 10_000, defaultHeartbeatMs: 300_000,
      random: Math.random, fetch: globalThis.fetch.bind(globalThis), ...opts,
    };
    this.heartbeatIntervalMs = this.#o.defaultHeartbeatMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.kick();
    this.#heartbeatSoon(0);
  }

  stop(): void {
    this.#running = false;
    this.#o.clock.clearTimeout(this.#drainTimer);
    this.#o.clock.clearTimeout(this.#hbTimer);
  }

  /** Ask for a delivery pass now (the dispensing store calls this after enqueueing); never throws. */
  kick(): void {
    if (!this.#running) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#o.clock.clearTimeout(this.#drainTimer);
    void this.#drain();
  }

  /** A heartbeat now, outside the interval: the robot's health changed (the link came or went, a fault). */
  heartbeatNow(): void {
    if (this.#running) this.#heartbeatSoon(0);
  }

  depth(): number {
    try {
      return outboxDepth(this.#o.db);
    } catch {
      return -1;
    }
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    let next = this.#o.pollMs;
    try {
      for (;;) {
        const rows = peekOutbox(this.#o.db, this.#o.batchSize);
        if (rows.length === 0) break;
        const ok = await this.#send(rows);
        if (!ok) {
          this.#failures++;
          this.stats.failures++;
          next = this.backoffMs(this.#failures);
          break;
        }
        this.#failures = 0;
        if (!this.#running) break;
      }
    } catch (err) {
      this.#o.logger.error({ err }, 'alarm delivery pass failed');
      this.#failures++;
      next = this.backoffMs(this.#failures);
    } finally {
      this.#busy = false;
    }
    if (!this.#running) return;
    if (this.#again && this.#failures === 0) {
      this.#again = false;
      next = 0;
    }
    this.#drainTimer = this.#o.clock.setTimeout(() => this.kick(), next);
  }

  /** Exponential, capped, with jitter so a fleet coming back after an outage does not arrive in step. */
  backoffMs(failures: number): number {
    const cap = Math.min(this.#o.maxBackoffMs, this.#o.baseBackoffMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(cap / 2 + (cap / 2) * this.#o.random());
  }

  async #post(path: string, body: unknown): Promise<{ status: number; json: unknown } | undefined> {
    const raw = JSON.stringify(body);
    const fullPath = `/v1/devices/${encodeURIComponent(this.#o.deviceId)}${path}`;
    const headers = { 'content-type': 'application/json', ...signedHeaders(this.#o.deviceId, this.#o.secret, 'POST', fullPath, Math.floor(this.#o.clock.now()), raw) };
    const ac = new AbortController();
    const t = this.#o.clock.setTimeout(() => ac.abort(), this.#o.requestTimeoutMs);
    try {
      const r = await this.#o.fetch(this.#o.url.replace(/\/$/, '') + fullPath, { method: 'POST', body: raw, headers, signal: ac.signal });
      const json = await r.json().catch(() => undefined);
      return { status: r.status, json };
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message, path }, 'alarm centre unreachable');
      return undefined;
    } finally {
      this.#o.clock.clearTimeout(t);
    }
  }

  async #send(rows: OutboxRow[]): Promise<boolean> {
    const seqs = rows.map((r) => r.seq);
    recordAttempt(this.#o.db, seqs);
    const events = rows.map((r) => ({ eventId: r.eventId, seq: r.seq, type: r.type, occurredAtMs: r.occurredAtMs, ...(r.doseId ? { doseId: r.doseId } : {}), payload: r.payload }));
    const res = await this.#post('/events/batch', { events });
    if (res && REFUSED_AS_MALFORMED.has(res.status)) {
      // Something in the batch is malformed for this centre. Alone, each event either goes through or is refused on
      // its own; one bad event must not hold back the missed doses queued behind it.
      if (rows.length > 1) {
        this.#o.logger.warn({ status: res.status, events: rows.length }, 'alarm centre refused a batch: sending its events one by one');
        for (const row of rows) if (!(await this.#send([row]))) return false;
        return true;
      }
      const row = rows[0]!;
      markRefused(this.#o.db, row.seq, res.status, Math.floor(this.#o.clock.now()));
      this.stats.refused++;
      this.#o.logger.error({ eventId: row.eventId, seq: row.seq, type: row.type, status: res.status }, 'alarm centre refused an event: taken out of the queue');
      return true;
    }
    if (!res || res.status < 200 || res.status >= 300) {
      if (res) this.#o.logger.warn({ status: res.status, events: rows.length }, 'alarm centre refused a batch');
      return false;
    }
    const results = (res.json as { results?: { eventId: string; status: string }[] } | undefined)?.results ?? [];
    for (const r of results) {
      if (r.status === 'duplicate') this.stats.duplicates++;
      else if (r.status === 'conflict') {
        // The centre already holds another body under this id; resending can never succeed.
        this.stats.conflicts++;
        this.#o.logger.error({ eventId: r.eventId }, 'alarm centre holds a different event under this id');
      } else this.stats.delivered++;
    }
    markDelivered(this.#o.db, seqs, this.#o.clock.now());
    return true;
  }

  #heartbeatSoon(delayMs: number): void {
    this.#o.clock.clearTimeout(this.#hbTimer);
    this.#hbTimer = this.#o.clock.setTimeout(() => void this.#heartbeat(), delayMs);
  }

  async #heartbeat(): Promise<void> {
    if (!this.#running) return;
    try {
      const h = this.#o.health();
      const res = await this.#post('/heartbeat', { sentAtMs: Math.floor(this.#o.clock.now()), outboxDepth: Math.max(0, this.depth()), ...h });
      if (res && res.status === 200) {
        this.stats.heartbeats++;
        const interval = (res.json as { intervalMs?: number }).intervalMs;
        if (typeof interval === 'number' && interval >= 1_000) this.heartbeatIntervalMs = interval;
      }
    } catch (err) {
      this.#o.logger.error({ err }, 'heartbeat failed');
    }
    if (this.#running) this.#heartbeatSoon(this.heartbeatIntervalMs);
  }
}

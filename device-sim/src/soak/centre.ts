// The alarm centre in a soak: the real alarm-centre app with its SQLite file, reached in process through a faulty network.
//
// The robot's real delivery loop (firmware-host/src/alarm/delivery.ts) posts
// to it through `fetch`, which here goes through fastify's `inject` and the
// network faults the profile draws: a request lost on the way, a response lost
// on the way back (the centre stored the batch, the robot does not know), a 503,
// a request that hangs until the robot's own timeout, and the centre restarting
// from its file. What the centre holds (its events table, as an operator sees
// it) is what the referee checks invariant 5 against.
//
// The centre reads the soak's virtual time (signatures are checked against it)
// but its own scheduler never runs: renotifying and escalating alerts are the
// operators' side, not what reaches the centre.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import { buildApp } from '../../../alarm-center/src/app.js';
import { registerDevice } from '../../../alarm-center/src/server.js';
import type { Random } from '../random.js';

export type NetworkFaults = {
  /** Share of requests lost before they reach the centre. */
  lostRequestRate: number;
  /** Share of requests the centre handled whose response is lost. */
  lostResponseRate: number;
  /** Share of requests answered 503 without being handled. */
  serverErrorRate: number;
  /** Share of requests that hang until the robot gives up on them. */
  timeoutRate: number;
  /** Share of dosings in which the centre restarts (from its file), at one of the next requests: before or after its commit. */
  centreRestartRate: number;
};

export const NO_NETWORK_FAULTS: NetworkFaults = { lostRequestRate: 0, lostResponseRate: 0, serverErrorRate: 0, timeoutRate: 0, centreRestartRate: 0 };

export type NetworkCounts = { requests: number; lostRequests: number; lostResponses: number; serverErrors: number; timeouts: number; restarts: number };

/** The key that encrypts device secrets at rest in the soak's centre (a throwaway database). */
const KEY = '5e'.repeat(32);
export const SOAK_DEVICE_ID = 'soak-robot';
/** A restart drawn for a dosing falls at one of this many next requests. */
const RESTART_WITHIN_REQUESTS = 8;

/** World time for the centre, with timers that never fire (its scheduler is not part of the soak). */
class ReadOnlyClock implements Clock {
  #n = 0;
  constructor(private readonly world: Clock) {}
  now(): number {
    return this.world.now();
  }
  setTimeout(): TimerHandle {
    return { id: ++this.#n };
  }
  clearTimeout(): void {}
}

type AlarmsDb = { prepare(sql: string): { all(...a: unknown[]): { type: string }[] } };

export class SoakCentre {
  readonly counts: NetworkCounts = { requests: 0, lostRequests: 0, lostResponses: 0, serverErrors: 0, timeouts: 0, restarts: 0 };
  /** Requests under way, and how many of them hang until the robot's timeout. */
  inflight = 0;
  hung = 0;
  #app: FastifyInstance | undefined;
  readonly #dbPath: string;
  readonly #clock: ReadOnlyClock;
  /** alarmsFor's statement and the connection it was prepared on. */
  #alarms: { db: AlarmsDb; st: ReturnType<AlarmsDb['prepare']> } | undefined;

  private constructor(
    private readonly dir: string,
    readonly secret: string,
    world: Clock,
    private readonly rng: Random,
    private readonly faults: NetworkFaults,
  ) {
    this.#dbPath = join(dir, 'centre.db');
    this.#clock = new ReadOnlyClock(world);
  }

  static async open(world: Clock, rng: Random, faults: NetworkFaults): Promise<SoakCentre> {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-soak-centre-'));
    const secret = registerDevice(join(dir, 'centre.db'), SOAK_DEVICE_ID, { clock: world, secretKeyHex: KEY });
    const c = new SoakCentre(dir, secret, world, rng, faults);
    await c.#start();
    return c;
  }

  async #start(): Promise<void> {
    this.#app = await buildApp({
      dbPath: this.#dbPath, clock: this.#clock, logger: pino({ level: 'silent' }),
      // Heartbeats hourly (virtual time) and no rate limit to speak of: the soak's requests come in bursts of wall-clock time.
      config: { secretKeyHex: KEY, heartbeatIntervalMs: 3600_000, rateLimitPerMinute: 1_000_000 },
    });
  }

  /** The final alarm events (and any other) the centre holds for a dose, as an operator sees them: one row per event id. */
  alarmsFor(doseId: string): string[] {
    const db = (this.#app as unknown as { db: AlarmsDb }).db;
    // Prepared once per database connection (the referee asks after every dose; a restart opens a new connection).
    if (this.#alarms?.db !== db) this.#alarms = { db, st: db.prepare('SELECT type FROM events WHERE device_id = ? AND dose_id = ?') };
    return this.#alarms.st.all(SOAK_DEVICE_ID, doseId).map((r) => r.type);
  }

  /** The silences the robot's pauses set at the centre (from its `care_paused` and `care_resumed` events), oldest first. */
  pauseSilences(): { startsAtMs: number; endsAtMs: number; endedEarly: boolean }[] {
    const db = (this.#app as unknown as { db: { prepare(sql: string): { all(...a: unknown[]): { s: number; e: number; early: number | null }[] } } }).db;
    return db.prepare("SELECT starts_at_ms AS s, ends_at_ms AS e, ended_early_at_ms AS early FROM silences WHERE device_id = ? AND reason LIKE 'care_pause:%' ORDER BY id")
      .all(SOAK_DEVICE_ID).map((r) => ({ startsAtMs: r.s, endsAtMs: r.e, endedEarly: r.early !== null }));
  }

  /** The centre goes down and comes back from its file. */
  async restart(): Promise<void> {
    return this.#restart(0);
  }

  /** A restart from inside a request: the other requests being handled finish first. */
  #restartUnder(): Promise<void> {
    return this.#restart(1);
  }

  async #restart(own: number): Promise<void> {
    const app = this.#app;
    this.#app = undefined;
    // Requests being handled finish first; hanging ones lose their connection.
    while (this.inflight > this.hung + own) await new Promise<void>((resolve) => setImmediate(resolve));
    this.dropHung();
    await app?.close();
    this.counts.restarts++;
    await this.#start();
  }

  /**
   * Once per dosing: the centre may restart, not at a quiet moment but at one of the next few requests (drawn now),
   * either before it handles that request (the robot sees the connection refused) or after it committed it and before
   * the answer leaves (the robot sees the connection drop and sends the batch again).
   */
  maybeRestart(): void {
    if (this.#restartIn === undefined && this.rng.chance(this.faults.centreRestartRate)) {
      this.#restartIn = this.rng.int(RESTART_WITHIN_REQUESTS);
      this.#restartAfterCommit = this.rng.chance(0.5);
    }
  }

  /** Requests until the drawn restart (undefined: none drawn), and whether it falls after that request's commit. */
  #restartIn: number | undefined;
  #restartAfterCommit = false;

  /** Whether the restart drawn falls at this request. */
  #restartsNow(): boolean {
    if (this.#restartIn === undefined) return false;
    if (this.#restartIn-- > 0) return false;
    this.#restartIn = undefined;
    return true;
  }

  /** The robot's `fetch`: through the faulty network to the app. */
  readonly fetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    this.counts.requests++;
    this.inflight++;
    try {
      const app = this.#app;
      if (!app) throw new TypeError('fetch failed: connection refused');
      const restart = this.#restartsNow();
      if (restart && !this.#restartAfterCommit) {
        await this.#restartUnder();
        throw new TypeError('fetch failed: connection refused (the centre is restarting)');
      }
      if (this.rng.chance(this.faults.lostRequestRate)) {
        this.counts.lostRequests++;
        throw new TypeError('fetch failed: request lost');
      }
      if (this.rng.chance(this.faults.serverErrorRate)) {
        this.counts.serverErrors++;
        return new Response(JSON.stringify({ statusCode: 503, error: 'Service Unavailable' }), { status: 503, headers: { 'content-type': 'application/json' } });
      }
      if (this.rng.chance(this.faults.timeoutRate)) {
        this.counts.timeouts++;
        this.hung++;
        // Given up (the robot's timeout, or its process died): counted at once, so a wait that runs virtual time
        // synchronously sees it, though the robot hears of it only once the event loop turns.
        await new Promise<never>((_, reject) => {
          const fail = () => {
            if (!this.#hanging.delete(fail)) return;
            this.hung--;
            reject(new DOMException('aborted', 'AbortError'));
          };
          this.#hanging.add(fail);
          const signal = init?.signal;
          if (signal?.aborted) fail();
          signal?.addEventListener('abort', fail, { once: true });
        });
      }
      const r = await app.inject({
        method: (init?.method ?? 'GET') as 'POST', url: url.pathname + url.search,
        payload: init?.body as string | undefined, headers: init?.headers as Record<string, string> | undefined,
      });
      if (restart) {
        await this.#restartUnder();
        throw new TypeError('fetch failed: connection reset (the centre restarted)');
      }
      if (this.rng.chance(this.faults.lostResponseRate)) {
        this.counts.lostResponses++;
        throw new TypeError('fetch failed: response lost');
      }
      const empty = r.statusCode === 204 || r.statusCode === 304;
      return new Response(empty ? null : r.body, { status: r.statusCode, headers: { 'content-type': 'application/json' } });
    } finally {
      this.inflight--;
    }
  }) as typeof globalThis.fetch;

  readonly #hanging = new Set<() => void>();

  /** Hanging requests fail at once (the process that made them died, and its connections with it). */
  dropHung(): void {
    for (const fail of [...this.#hanging]) fail();
  }

  async close(): Promise<void> {
    const app = this.#app;
    this.#app = undefined;
    await app?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

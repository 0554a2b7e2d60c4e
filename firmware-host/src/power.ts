// The robot's running mark: finds an unclean stop at start-up and tells the alarm centre (power_lost, power_restored).
//
// While the robot runs, the store holds when it started and when it last knew
// it was running, refreshed every `everyMs` on the clock; a clean stop clears
// both. A mark found at start-up means the last run ended without a clean stop
// (a power cut, a kill, a crash): `power_lost` is queued with the last time the
// robot knew it was running, `power_restored` with now, and the new run's mark
// is written, all in one transaction, so a second start never reports the same
// cut twice. The event ids name the instants, so a retry is deduplicated.

import type { Logger } from 'pino';
import type { Clock, IdleTicks, TimerHandle } from '../../protocol/src/clock.js';
import { enqueueOutbox } from './alarm/outbox.js';
import type { Store } from './store/store.js';

/** How often the mark is refreshed: the reported time of a cut is at most this much before the real one. */
export const ALIVE_EVERY_MS = 30_000;

const SINCE = 'running_since_ms';
const ALIVE = 'alive_at_ms';

export type UncleanStop = { runningSinceMs: number; lastAliveAtMs: number; restartedAtMs: number };

export type PowerMarkOptions = { store: Store; clock: Clock; logger: Logger; everyMs?: number };

export class PowerMark {
  readonly #o: PowerMarkOptions;
  readonly #everyMs: number;
  #timer: TimerHandle | undefined;
  /** When the timer fires. */
  #atMs = 0;
  #running = false;

  constructor(opts: PowerMarkOptions) {
    this.#o = opts;
    this.#everyMs = opts.everyMs ?? ALIVE_EVERY_MS;
  }

  /** Looks for the last run's mark (queueing the pair of events if there is one), writes this run's, and keeps it fresh. */
  start(): UncleanStop | undefined {
    if (this.#running) return undefined;
    this.#running = true;
    const { store, clock, logger } = this.#o;
    const now = Math.floor(clock.now());
    // It reads the last run's mark before it writes this run's: the write lock is taken at BEGIN (see Store's #tx).
    const found = store.db.transaction((): UncleanStop | undefined => {
      const since = Number(store.getMeta(SINCE) || NaN);
      const alive = Number(store.getMeta(ALIVE) || NaN);
      store.setMeta(SINCE, String(now));
      store.setMeta(ALIVE, String(now));
      if (!Number.isFinite(alive)) return undefined;
      const stop = { runningSinceMs: Number.isFinite(since) ? since : alive, lastAliveAtMs: alive, restartedAtMs: now };
      store.log('power_lost', null, { ...stop });
      enqueueOutbox(store.db, {
        eventId: `power_lost:${alive}`, type: 'power_lost', occurredAtMs: alive,
        payload: { lastAliveAtMs: alive, runningSinceMs: stop.runningSinceMs },
      });
      enqueueOutbox(store.db, {
        eventId: `power_restored:${now}`, type: 'power_restored', occurredAtMs: now,
        payload: { lastAliveAtMs: alive, downMs: Math.max(0, now - alive) },
      });
      return stop;
    }).immediate();
    if (found) logger.warn(found, 'the last run did not stop cleanly: power_lost and power_restored queued for the alarm centre');
    this.#arm();
    return found;
  }

  /** A clean stop: the mark is cleared, so the next start reports nothing. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#o.store.db.transaction(() => {
        this.#o.store.setMeta(SINCE, '');
        this.#o.store.setMeta(ALIVE, '');
      })();
    } catch (err) {
      this.#o.logger.error({ err }, 'could not clear the running mark');
    }
  }

  #arm(delayMs = this.#everyMs): void {
    this.#atMs = this.#o.clock.now() + delayMs;
    this.#timer = this.#o.clock.setTimeout(() => {
      if (!this.#running) return;
      this.#refresh(this.#o.clock.now());
      this.#arm();
    }, delayMs);
  }

  #refresh(atMs: number): void {
    try {
      this.#o.store.setMeta(ALIVE, String(Math.floor(atMs)));
    } catch (err) {
      this.#o.logger.error({ err }, 'could not refresh the running mark');
    }
  }

  /**
   * The next refresh when it comes before `beforeMs`: its timer, when it fires and its period; else undefined. For a
   * virtual-time driver that skips idle rounds (the soak's coalesced mode, device-sim/src/soak/coast.ts), which knows
   * that nothing else runs on this process's clock before the time it skips to.
   */
  idleRefresh(beforeMs = Infinity): IdleTicks | undefined {
    if (!this.#running || !this.#timer || this.#atMs >= beforeMs) return undefined;
    return { timer: this.#timer, atMs: this.#atMs, everyMs: this.#everyMs };
  }

  /**
   * Accounts `refreshes` refreshes as done, as idleRefresh() offered them: each overwrote the one before, so the mark
   * holds the last one's time; the next comes `refreshes` periods on.
   */
  coastRefresh(refreshes: number): void {
    if (refreshes <= 0 || !this.#running || !this.#timer) return;
    this.#refresh(this.#atMs + (refreshes - 1) * this.#everyMs);
    this.#o.clock.clearTimeout(this.#timer);
    this.#arm(this.#atMs + refreshes * this.#everyMs - this.#o.clock.now());
  }
}

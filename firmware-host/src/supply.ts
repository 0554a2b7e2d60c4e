// Low supply: tells the alarm centre (once a day per roll) when the loaded roll holds fewer than N days of pouches.
//
// "Days left" runs from now to the intake time of the last pouch still on the
// roll, so a roll whose last pouch is due in 2.5 days has 2.5 days left. The
// outbox event id is `<rollId>:low_supply:<local date>`: a restart or a second
// check on the same day enqueues nothing new, the next day repeats it, and a
// new roll (a new roll id) stops it.

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../protocol/src/clock.js';
import type { Store } from './store/store.js';

export const DEFAULT_LOW_SUPPLY_DAYS = 3;
export const DAY_MS = 86_400_000;
/** How often the watch looks; the event id keeps it to one a day. */
export const SUPPLY_CHECK_EVERY_MS = 3_600_000;

export type SupplyState = {
  rollId: string;
  pouchesLeft: number;
  /** Intake time of the last pouch still on the roll; null when the roll is used up. */
  lastIntakeAtMs: number | null;
  /** Fractional days from now to the last pouch, 0 when none is left. */
  daysLeft: number;
};

/** What the active roll still holds; undefined when no roll is loaded. */
export function supplyState(store: Store, nowMs: number): SupplyState | undefined {
  const roll = store.activeRoll();
  if (!roll) return undefined;
  // Counted in SQL: this runs after every dose.
  const left = store.remainingCount() ?? { count: 0, lastIntakeAtMs: null };
  const last = left.count > 0 ? left.lastIntakeAtMs : null;
  return { rollId: roll.rollId, pouchesLeft: left.count, lastIntakeAtMs: last, daysLeft: last === null ? 0 : Math.max(0, (last - nowMs) / DAY_MS) };
}

/** `YYYY-MM-DD` of an instant in a time zone. */
export function localDate(atMs: number, timeZone: string): string {
  let z = dateFormats.get(timeZone);
  if (!z) {
    // en-CA formats dates as YYYY-MM-DD.
    z = { format: new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }), quarters: new Map() };
    dateFormats.set(timeZone, z);
  }
  const quarter = Math.floor(atMs / QUARTER_HOUR_MS);
  let date = z.quarters.get(quarter);
  if (date === undefined) {
    if (z.quarters.size >= QUARTERS_KEPT) z.quarters.clear();
    date = z.format.format(atMs);
    z.quarters.set(quarter, date);
  }
  return date;
}

/**
 * Every zone's offset from UTC has been a whole number of quarter hours since the 1970s, so a local date changes only
 * on a quarter hour of UTC: each zone's formatter runs once per quarter hour asked about (the heartbeat's daily
 * report asks for a date per dose). Building a formatter costs far more than formatting with it: one per zone.
 */
const QUARTER_HOUR_MS = 900_000;
const QUARTERS_KEPT = 4096;
const dateFormats = new Map<string, { format: Intl.DateTimeFormat; quarters: Map<number, string> }>();

export type SupplyWatchOptions = {
  store: Store;
  clock: Clock;
  /** Fewer days of pouches than this is low; 3 by default. */
  days?: number;
  logger: Logger;
  /** Zone of the day in the event id; Europe/Copenhagen by default. */
  timeZone?: string;
};

export class SupplyWatch {
  readonly #o: SupplyWatchOptions;
  readonly #days: number;
  readonly #timeZone: string;
  #timer: TimerHandle | undefined;
  #running = false;

  constructor(opts: SupplyWatchOptions) {
    this.#o = opts;
    this.#days = opts.days ?? DEFAULT_LOW_SUPPLY_DAYS;
    this.#timeZone = opts.timeZone ?? 'Europe/Copenhagen';
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  stop(): void {
    this.#running = false;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Looks now: enqueues today's low_supply event for the active roll if it runs low and none was enqueued today. */
  check(): void {
    const { store, clock } = this.#o;
    const now = clock.now();
    const s = supplyState(store, now);
    if (!s || s.daysLeft >= this.#days) return;
    const eventId = `${s.rollId}:low_supply:${localDate(now, this.#timeZone)}`;
    // The outbox ignores a repeated id, but the event log would not: remember the last one sent.
    if (store.getMeta('low_supply_last') === eventId) return;
    const daysLeft = Math.floor(s.daysLeft * 10) / 10;
    store.db.transaction(() => {
      store.alarm(eventId, 'low_supply', null, { rollId: s.rollId, pouchesLeft: s.pouchesLeft, daysLeft, lastIntakeAtMs: s.lastIntakeAtMs });
      store.setMeta('low_supply_last', eventId);
    })();
    this.#o.logger.warn({ rollId: s.rollId, pouchesLeft: s.pouchesLeft, daysLeft }, 'low supply: the alarm centre is told');
  }

  /** Looks now, as `check()`, for callers that must not fail (a dose just ended): a failure is logged, the next look retries. */
  nudge(): void {
    try {
      this.check();
    } catch (err) {
      this.#o.logger.error({ err }, 'low-supply check failed');
    }
  }

  #tick(): void {
    if (!this.#running) return;
    this.nudge();
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), SUPPLY_CHECK_EVERY_MS);
  }
}

// What the robot says of itself in every heartbeat: link, MCU, firmware and the day's running dosing figures.
import type { DeviceLink } from '../link/link.js';
import type { Store } from '../store/store.js';
import { localDate } from '../supply.js';
import type { DailyReport, DeviceHealth } from '../../../protocol/src/centre/contract.js';

const HOUR = 3600_000;

/**
 * The robot-local date before `nowMs`'s: the calendar day before today's, whatever the day's length where clocks
 * change (a date a zone skipped, as Samoa did on 30 December 2011, has no doses and so no report).
 */
export function previousLocalDate(nowMs: number, timeZone: string): string {
  const [y, m, d] = localDate(nowMs, timeZone).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10);
}

/**
 * A day's figures (robot-local date; today's so far by default): doses that ended that day, returned pouches left out.
 * Yesterday's are final, and go with every heartbeat too, so a day whose last heartbeats never reached the centre
 * (it was down across the robot's midnight) is complete there all the same.
 */
export function dailyReport(store: Store, nowMs: number, timeZone: string, day = localDate(nowMs, timeZone)): DailyReport {
  return dailyReports(store, nowMs, timeZone, [day])[0]!;
}

/** dailyReport for each of `days`, from one read of the store. */
export function dailyReports(store: Store, nowMs: number, timeZone: string, days: readonly string[]): DailyReport[] {
  const reports = days.map((day) => ({ day, dosings: 0, pills: 0, correct: 0, green: 0, yellow: 0, missed: 0, taken: 0, failed: 0 }));
  // A local day is at most 25 hours long: what ended today ended within the last 26 hours, yesterday within 51 (read
  // without the whole history).
  for (const [finalAtMs, state, cls, countedPills] of store.endingsSince(nowMs - 51 * HOUR)) {
    const date = localDate(finalAtMs, timeZone);
    for (const r of reports) {
      if (r.day !== date) continue;
      if (cls !== null) {
        r.dosings++;
        r.pills += countedPills ?? 0;
        r[cls]++;
      }
      // Due = taken + missed + failed: the centre's adherence needs the doses the robot could not give too.
      if (state === 'taken' || state === 'missed' || state === 'failed') r[state]++;
    }
  }
  return reports;
}

/** The heartbeat's health: `mcuFault` is whether a device fault of the MCU's own is open (a latched stop). */
export function deviceHealth(o: { store: Store; link: DeviceLink; nowMs: number; timeZone: string; mcuFault: boolean }): DeviceHealth {
  const { link } = o;
  // The day before's final figures, when any dose ended on it (a day with none has nothing a lost heartbeat could miss).
  const [report, previous] = dailyReports(o.store, o.nowMs, o.timeZone, [localDate(o.nowMs, o.timeZone), previousLocalDate(o.nowMs, o.timeZone)]) as [DailyReport, DailyReport];
  return {
    link: link.state === 'ready' ? 'ok' : link.state === 'lost' ? 'degraded' : 'down',
    mcu: o.mcuFault ? 'fault' : link.hello ? 'ok' : 'unknown',
    firmwareVersion: link.hello?.fw ?? 'unknown',
    report,
    ...(previous.taken + previous.missed + (previous.failed ?? 0) > 0 ? { previousReport: previous } : {}),
  };
}

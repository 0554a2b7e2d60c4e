// What the robot says of itself in every heartbeat: link, MCU, firmware and the day's running dosing figures.
import type { DeviceLink } from '../link/link.js';
import type { Store } from '../store/store.js';
import { localDate } from '../supply.js';
import type { DailyReport, DeviceHealth } from '../../../protocol/src/centre/contract.js';

const HOUR = 3600_000;

/** The robot-local date before `nowMs`'s (a day is 23 to 25 hours long where clocks change). */
export function previousLocalDate(nowMs: number, timeZone: string): string {
  const today = localDate(nowMs, timeZone);
  for (let h = 1; h <= 26; h++) {
    const day = localDate(nowMs - h * HOUR, timeZone);
    if (day !== today) return day;
  }
  return localDate(nowMs - 24 * HOUR, timeZone);
}

/**
 * A day's figures (robot-local date; today's so far by default): doses that ended that day, returned pouches left out.
 * Yesterday's are final, and go with every heartbeat too, so a day whose last heartbeats never reached the centre
 * (it was down across the robot's midnight) is complete there all the same.
 */
export function dailyReport(store: Store, nowMs: number, timeZone: string, day = localDate(nowMs, timeZone)): DailyReport {
  // A local day is at most 25 hours long: what ended today ended within the last 26 hours, yesterday within 51 (read
  // without the whole history).
  const ended = store.dosesEndedSince(nowMs - 51 * HOUR).filter((d) => d.finalAtMs !== null && d.state !== 'returned' && localDate(d.finalAtMs, timeZone) === day);
  const dispensed = ended.filter((d) => d.cls !== null);
  return {
    day,
    dosings: dispensed.length,
    pills: dispensed.reduce((n, d) => n + (d.countedPills ?? 0), 0),
    correct: dispensed.filter((d) => d.cls === 'correct').length,
    green: dispensed.filter((d) => d.cls === 'green').length,
    yellow: dispensed.filter((d) => d.cls === 'yellow').length,
    missed: ended.filter((d) => d.state === 'missed').length,
    taken: ended.filter((d) => d.state === 'taken').length,
    // Due = taken + missed + failed: the centre's adherence needs the doses the robot could not give too.
    failed: ended.filter((d) => d.state === 'failed').length,
  };
}

/** The heartbeat's health: `mcuFault` is whether a device fault of the MCU's own is open (a latched stop). */
export function deviceHealth(o: { store: Store; link: DeviceLink; nowMs: number; timeZone: string; mcuFault: boolean }): DeviceHealth {
  const { link } = o;
  // The day before's final figures, when any dose ended on it (a day with none has nothing a lost heartbeat could miss).
  const previous = dailyReport(o.store, o.nowMs, o.timeZone, previousLocalDate(o.nowMs, o.timeZone));
  return {
    link: link.state === 'ready' ? 'ok' : link.state === 'lost' ? 'degraded' : 'down',
    mcu: o.mcuFault ? 'fault' : link.hello ? 'ok' : 'unknown',
    firmwareVersion: link.hello?.fw ?? 'unknown',
    report: dailyReport(o.store, o.nowMs, o.timeZone),
    ...(previous.taken + previous.missed + (previous.failed ?? 0) > 0 ? { previousReport: previous } : {}),
  };
}

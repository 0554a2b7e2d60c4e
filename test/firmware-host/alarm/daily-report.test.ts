// The day's figures a heartbeat carries, and the day before's: robot-local days, 23 to 25 hours long where clocks change.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { dailyReport, previousLocalDate } from '../../../firmware-host/src/alarm/health.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { localDate } from '../../../firmware-host/src/supply.js';
import { pouchLabel } from '../../../firmware-host/src/roll/types.js';

const CPH = 'Europe/Copenhagen';

describe('the day before', () => {
  it('is the calendar day before in the robot\'s zone, across the short and the long day of the year', () => {
    expect(previousLocalDate(Date.UTC(2026, 10, 30, 12), CPH)).toBe('2026-11-29');
    // 00:30 on 30 March 2026 follows the 23-hour 29 March; 00:30 on 26 October follows the 25-hour 25 October.
    expect(previousLocalDate(Date.UTC(2026, 2, 29, 22, 30), CPH)).toBe('2026-03-29');
    expect(previousLocalDate(Date.UTC(2026, 9, 25, 23, 30), CPH)).toBe('2026-10-25');
    expect(previousLocalDate(Date.UTC(2026, 10, 30, 23, 30), 'Pacific/Kiritimati')).toBe('2026-11-30');
    // Across a month, a year and a leap day.
    expect(previousLocalDate(Date.UTC(2026, 11, 31, 23, 30), CPH)).toBe('2026-12-31');
    expect(previousLocalDate(Date.UTC(2028, 2, 1, 12), CPH)).toBe('2028-02-29');
  });

  it('changes on the zone\'s midnight to the millisecond, in zones a quarter or three quarters of an hour off UTC', () => {
    // Kathmandu is UTC+5:45 and the Chatham Islands UTC+13:45 in their summer: midnight falls at 18:15 and 10:15 UTC.
    // Asked in either order (a date once formatted is remembered for its quarter hour of UTC).
    for (const [zone, hour, before, after] of [['Asia/Kathmandu', 18, '2026-11-30', '2026-12-01'], ['Pacific/Chatham', 10, '2026-11-30', '2026-12-01']] as const) {
      const midnight = Date.UTC(2026, 10, 30, hour, 15);
      expect([localDate(midnight, zone), localDate(midnight - 1, zone)], zone).toEqual([after, before]);
      expect([localDate(midnight - 1, zone), localDate(midnight + 899_999, zone), localDate(midnight - 900_000, zone)], zone).toEqual([before, after, before]);
    }
  });

  it("counts the doses that ended on it, final, while today's figures start again at midnight", () => {
    // 23:50 in Copenhagen on 30 November: one dose is taken, then midnight passes.
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 22, 40));
    const store = Store.open(':memory:', { clock });
    store.commission('C1', 'admin');
    store.loadRoll({ rollId: 'D', citizenId: 'C1', pouches: [{ rollId: 'D', position: 1, slot: 0, label: pouchLabel('D', 1), intakeAtMs: clock.now() + 60_000, pillCount: 2 }] }, 'anna');
    const dose = store.openDoses()[0]!;
    store.db.prepare("UPDATE doses SET state = 'taken', cls = 'correct', final_at_ms = ?, counted_pills = 2 WHERE dose_id = ?").run(clock.now() + 10 * 60_000, dose.doseId);
    clock.advance(30 * 60_000);
    expect(dailyReport(store, clock.now(), CPH)).toMatchObject({ day: '2026-12-01', dosings: 0, taken: 0 });
    expect(dailyReport(store, clock.now(), CPH, previousLocalDate(clock.now(), CPH))).toMatchObject({ day: '2026-11-30', dosings: 1, taken: 1, pills: 2 });
    store.close();
  });
});

// Fleet report from heartbeat daily figures and alert timings.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { event, loginAs, makeFixture, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

it('sums daily reports per month, overwriting a day rather than adding, and times claim and resolve', async () => {
  const hb = (dev: string, day: string, dosings: number, green: number, yellow: number) =>
    signed(f, dev, '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1', report: { day, dosings, pills: dosings * 4, correct: dosings - green - yellow, green, yellow, missed: 1, taken: dosings - 1 } });
  await f.app.inject(hb('dev-a', '2026-01-05', 3, 0, 0));
  f.clock.advance(10);
  await f.app.inject(hb('dev-a', '2026-01-05', 4, 1, 0));
  f.clock.advance(10);
  await f.app.inject(hb('dev-b', '2026-01-05', 6, 0, 1));
  const r = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'q' })));
  const olga = await loginAs(f, 'olga');
  f.clock.advance(30_000);
  await f.app.inject({ method: 'POST', url: `/v1/alerts/${r.json().alertId}/claim`, headers: { cookie: olga }, payload: { version: 1 } });
  f.clock.advance(30_000);
  await f.app.inject({ method: 'POST', url: `/v1/alerts/${r.json().alertId}/resolve`, headers: { cookie: olga }, payload: { version: 2, outcome: 'reached_taken' } });
  const rows = (await f.app.inject({ method: 'GET', url: '/v1/reports/fleet', headers: { cookie: olga } })).json() as Record<string, number | string>[];
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ month: '2026-01', dosings: 10, pills: 40, green: 1, yellow: 1, correct: 8, missed: 2, alerts: 1, meanClaimMs: 30_000, meanResolveMs: 60_000 });
  expect(rows[0]!.accuracy).toBeCloseTo(0.8, 10);
});

it("stores the day before's final figures a heartbeat carries, so a day whose last heartbeats were lost is complete", async () => {
  const figures = (day: string, dosings: number) => ({ day, dosings, pills: dosings * 3, correct: dosings, green: 0, yellow: 0, missed: 0, taken: dosings, failed: 0 });
  const hb = (report: object, previousReport?: object) =>
    signed(f, 'dev-a', '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1', report, ...(previousReport ? { previousReport } : {}) });
  f.clock.advance(Date.UTC(2026, 0, 6, 12) - f.clock.now());
  // The last heartbeat of the 5th said 2 dosings; 3 more ended before its midnight while the centre was unreachable.
  expect((await f.app.inject(hb(figures('2026-01-05', 2)))).statusCode).toBe(200);
  f.clock.advance(10);
  expect((await f.app.inject(hb(figures('2026-01-06', 1), figures('2026-01-05', 5)))).statusCode).toBe(200);
  const rows = f.app.db.prepare("SELECT day, dosings FROM daily_reports WHERE device_id = 'dev-a' ORDER BY day").all();
  expect(rows).toEqual([{ day: '2026-01-05', dosings: 5 }, { day: '2026-01-06', dosings: 1 }]);
  // The day before's figures are checked as the day's are.
  const bad = await f.app.inject(hb(figures('2026-01-06', 1), { ...figures('2026-01-05', 1), correct: 2 }));
  expect(bad.statusCode).toBe(422);
});

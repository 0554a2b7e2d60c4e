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

// The harness's robot delivering to a real alarm centre in the same process: its fetch bound to the centre's app
// (app.inject), both on one manual clock. A dose nobody takes becomes one alert; heartbeats carry the day's figures.
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { SimHarness } from '../../device-sim/src/harness/sim-harness.js';
import { QUICK_TIMING } from '../firmware-host/scenarios/kit.js';
import { makeFixture, type Fixture } from '../alarm-center/helpers.js';

const MIN = 60_000;
const silent = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fetch that hands the request to the centre's app in this process. */
function injecting(app: () => FastifyInstance): typeof globalThis.fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    const r = await app().inject({
      method: (init?.method ?? 'GET') as 'POST', url: url.pathname + url.search, headers: init?.headers as Record<string, string>, payload: init?.body as string,
    });
    return new Response(r.body, { status: r.statusCode, headers: { 'content-type': String(r.headers['content-type'] ?? 'application/json') } });
  };
}

/** Runs the manual clock in steps, letting the requests in flight (promises) settle between them. */
async function run(clock: ManualClock, ms: number, done: () => boolean = () => false): Promise<boolean> {
  for (let t = 0; t < ms; t += 1_000) {
    clock.advance(1_000);
    await new Promise((r) => setImmediate(r));
    if (done()) return true;
  }
  return done();
}

describe('SimHarness with an alarm target', () => {
  it('delivers a missed dose to an in-process alarm centre once, and heartbeats with the day\'s figures', async () => {
    const f: Fixture = await makeFixture({}, ['R-SIM']);
    cleanups.push(() => f.cleanup());
    const clock = f.clock;
    const h = new SimHarness({
      seed: 8, clock, timing: QUICK_TIMING, logger: silent,
      alarm: { url: 'http://centre.invalid', deviceId: 'R-SIM', secret: f.secrets['R-SIM']!, fetch: injecting(() => f.app) },
    });
    cleanups.push(() => h.stop());
    h.start();
    expect(await run(clock, 60_000, () => h.controller.status().reconciled)).toBe(true);
    const [pouch] = h.loadRoll([{ intakeAtMs: clock.now() + 2 * MIN, pills: 3 }]);
    expect(await run(clock, 30 * MIN, () => h.store.dose(pouch!.label)?.state === 'missed' && h.robot.delivery!.depth() === 0)).toBe(true);

    const events = f.app.db.prepare('SELECT type FROM events WHERE device_id = ? AND dose_id = ? ORDER BY seq').all('R-SIM', pouch!.label) as { type: string }[];
    expect(events.map((e) => e.type)).toEqual(['dose_overdue', 'missed_dose']);
    // The next heartbeats carry the day's running figures, the missed dose in them.
    await run(clock, 10 * MIN);
    const device = f.app.db.prepare('SELECT last_heartbeat_at_ms, heartbeat_json FROM devices WHERE id = ?').get('R-SIM') as { last_heartbeat_at_ms: number; heartbeat_json: string };
    expect(device.last_heartbeat_at_ms).toBeGreaterThan(0);
    expect(JSON.parse(device.heartbeat_json)).toMatchObject({ link: 'ok', mcu: 'ok' });
    expect(f.app.db.prepare('SELECT dosings, missed, taken FROM daily_reports WHERE device_id = ?').all('R-SIM')).toEqual([{ dosings: 0, missed: 1, taken: 0 }]);
    expect(h.robot.delivery!.stats.delivered).toBeGreaterThanOrEqual(2);
  });
});

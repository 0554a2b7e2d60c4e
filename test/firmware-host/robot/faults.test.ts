// What the robot tells the centre about itself: an unclean stop (power_lost / power_restored), device faults and their
// clearing, and a controller error, which is recorded, queued, shown on both screens and ends the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import { ALIVE_EVERY_MS } from '../../../firmware-host/src/power.js';
import { CONTROLLER_FAULT_CLEAR_MS } from '../../../firmware-host/src/device-faults.js';
import { QUICK_TIMING } from '../scenarios/kit.js';

const silent = pino({ level: 'silent' });
const MIN = 60_000;
const T0 = Date.UTC(2027, 2, 1, 8, 0);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function file(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-robot-faults-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'robot.db');
}

function robot(clock: ManualClock, dbPath?: string, extra: Partial<ConstructorParameters<typeof SimHarness>[0]> = {}): SimHarness {
  const h = new SimHarness({ seed: 3, clock, timing: QUICK_TIMING, logger: silent, ...(dbPath ? { dbPath } : {}), ...extra });
  cleanups.push(() => h.stop());
  return h.start();
}

type Row = { type: string; event_id: string; occurred_at_ms: number; payload_json: string };
const outbox = (h: SimHarness, types: string[]) =>
  (h.store.db.prepare(`SELECT type, event_id, occurred_at_ms, payload_json FROM outbox WHERE type IN (${types.map(() => '?').join(',')}) ORDER BY seq`).all(...types) as Row[])
    .map((r) => ({ type: r.type, eventId: r.event_id, atMs: r.occurred_at_ms, payload: JSON.parse(r.payload_json) as Record<string, unknown> }));

describe('the running mark', () => {
  it('a clean stop reports nothing; an unclean one is one power_lost / power_restored pair with the last time the robot knew it ran', async () => {
    const db = file();
    const clock = new ManualClock(T0);
    const first = robot(clock, db);
    clock.advance(10 * MIN + 5_000);
    await first.stop();
    // The second run has a clock of its own: when it is dropped (the power goes, no stop), its timers die with it.
    const own = new ManualClock(clock.now());
    const second = robot(own, db);
    expect(second.robot.uncleanStop).toBeUndefined();
    expect(outbox(second, ['power_lost', 'power_restored'])).toEqual([]);
    own.advance(7 * MIN + 1_000);
    const lastMark = T0 + 10 * MIN + 5_000 + Math.floor((7 * MIN + 1_000) / ALIVE_EVERY_MS) * ALIVE_EVERY_MS;
    clock.advance(7 * MIN + 1_000 + 3 * MIN);
    const restartAt = clock.now();
    const third = robot(clock, db);
    expect(third.robot.uncleanStop).toEqual({ runningSinceMs: T0 + 10 * MIN + 5_000, lastAliveAtMs: lastMark, restartedAtMs: restartAt });
    expect(outbox(third, ['power_lost', 'power_restored'])).toEqual([
      { type: 'power_lost', eventId: `power_lost:${lastMark}`, atMs: lastMark, payload: { lastAliveAtMs: lastMark, runningSinceMs: T0 + 10 * MIN + 5_000 } },
      { type: 'power_restored', eventId: `power_restored:${restartAt}`, atMs: restartAt, payload: { lastAliveAtMs: lastMark, downMs: restartAt - lastMark } },
    ]);
    expect(third.store.recentEvents(20).filter((e) => e.type === 'power_lost')).toHaveLength(1);
  });
});

describe('device faults', () => {
  it('a serial link lost longer than the set time is a device fault, cleared when it is back; a short loss is not', () => {
    const clock = new ManualClock(T0);
    const h = robot(clock, undefined, {});
    expect(h.runUntil(() => h.link.state === 'ready', 10_000)).toBe(true);
    h.sim.setFault('notAnswering', 1);
    expect(h.runUntil(() => h.link.state !== 'ready', 60_000)).toBe(true);
    h.sim.setFault('notAnswering', 0);
    expect(h.runUntil(() => h.link.state === 'ready', 60_000)).toBe(true);
    expect(outbox(h, ['device_fault'])).toEqual([]);
    h.sim.setFault('notAnswering', 1);
    expect(h.runUntil(() => h.robot.faults.has('link'), 5 * MIN)).toBe(true);
    expect(outbox(h, ['device_fault']).map((e) => e.payload)).toEqual([{ source: 'link', reason: 'link_lost', forMs: 120_000 }]);
    h.sim.setFault('notAnswering', 0);
    expect(h.runUntil(() => !h.robot.faults.has('link'), 5 * MIN)).toBe(true);
    expect(outbox(h, ['device_fault', 'fault_cleared']).map((e) => [e.type, e.payload.source])).toEqual([['device_fault', 'link'], ['fault_cleared', 'link']]);
  });

  it('a latched MCU (a jam) is a device fault, in the outbox and the heartbeat; cleared once the MCU is no longer latched', () => {
    const clock = new ManualClock(T0);
    // The centre is a fetch that answers every request and keeps the heartbeats' bodies.
    const heartbeats: { mcu: string; link: string }[] = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      if (String(input).endsWith('/heartbeat')) heartbeats.push(JSON.parse(String(init?.body)) as { mcu: string; link: string });
      return new Response(JSON.stringify({ intervalMs: 300_000, serverTimeMs: clock.now(), results: [] }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const h = robot(clock, undefined, { faults: { jam: 1 }, alarm: { url: 'http://centre.test', deviceId: 'R-1', secret: 'secret', fetch } });
    expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
    h.loadRoll([{ intakeAtMs: T0 + 2 * MIN, pills: 2 }]);
    expect(h.runUntil(() => h.controller.status().phase === 'early', 10 * MIN)).toBe(true);
    h.controller.pressButton();
    expect(h.runUntil(() => h.robot.faults.has('mcu'), 5 * MIN)).toBe(true);
    expect(outbox(h, ['device_fault'])[0]!.payload).toMatchObject({ source: 'mcu' });
    h.runUntil(() => false, 1_000);
    expect(heartbeats.at(-1)).toMatchObject({ mcu: 'fault', link: 'ok' });
    // A jam stays latched (the dose ends failed) until someone clears the MCU, here over the link as a technician would.
    expect(h.runUntil(() => h.outcomes.length > 0, 30 * MIN)).toBe(true);
    expect(h.outcomes[0]).toMatchObject({ final: 'failed', cls: 'yellow' });
    expect(h.robot.faults.has('mcu')).toBe(true);
    h.sim.setFault('jam', 0);
    h.link.send({ name: 'CLEAR' }, () => undefined);
    expect(h.runUntil(() => !h.robot.faults.has('mcu'), 5 * MIN)).toBe(true);
    expect(outbox(h, ['device_fault', 'fault_cleared']).map((e) => [e.type, e.payload.source])).toEqual([['device_fault', 'mcu'], ['fault_cleared', 'mcu']]);
  });

  it('a controller error is recorded, queued as device_fault, shown on both screens and ends the run; a later run that keeps going clears it', async () => {
    const db = file();
    const clock = new ManualClock(T0);
    const broken = robot(clock, db, { judge: () => { throw new TypeError('verdict rules broke'); } });
    const fatal: Error[] = [];
    broken.robot.onFatal((err) => fatal.push(err));
    expect(broken.runUntil(() => broken.controller.status().reconciled, 60_000)).toBe(true);
    broken.loadRoll([{ intakeAtMs: T0 + 2 * MIN, pills: 2 }]);
    expect(broken.runUntil(() => broken.controller.status().phase === 'early', 10 * MIN)).toBe(true);
    broken.controller.pressButton();
    expect(broken.runUntil(() => fatal.length > 0, 5 * MIN)).toBe(true);
    expect(fatal[0]).toBeInstanceOf(TypeError);
    expect(outbox(broken, ['device_fault']).map((e) => e.payload)).toEqual([{ source: 'controller', reason: 'controller_error', error: 'TypeError' }]);
    expect(broken.store.recentEvents(5).map((e) => e.type)).toContain('device_fault');
    const citizen = (await broken.robot.backend()).citizenView();
    expect(citizen).toMatchObject({ phase: 'error', error: { reason: 'device_fault' }, reminder: false });
    expect(citizen.notices?.map((n) => n.code)).toEqual(['device_fault', 'no_alarm_centre']);
    expect((await broken.robot.backend()).pharmacyView().notices?.[0]?.text.da).toMatch(/fejl i robotten/);
    await broken.stop();

    // The restarted robot resumes the dose it was dispensing and fails again: still the one open fault, the repeat in
    // the event log.
    const again = robot(clock, db, { judge: () => { throw new TypeError('verdict rules broke'); } });
    again.robot.onFatal((err) => fatal.push(err));
    expect(again.runUntil(() => fatal.length > 1, 5 * MIN)).toBe(true);
    expect(outbox(again, ['device_fault', 'fault_cleared']).map((e) => e.type)).toEqual(['device_fault']);
    expect(again.store.recentEvents(10).map((e) => e.type)).toContain('controller_error');
    await again.stop();

    // A run that keeps going for CONTROLLER_FAULT_CLEAR_MS clears it; until then the screens still show it.
    const next = robot(clock, db);
    expect(next.runUntil(() => next.controller.status().reconciled, 60_000)).toBe(true);
    expect((await next.robot.backend()).citizenView().error).toEqual({ reason: 'device_fault', staffTold: false });
    expect(next.runUntil(() => !next.robot.faults.has('controller'), CONTROLLER_FAULT_CLEAR_MS + 1_000)).toBe(true);
    expect(outbox(next, ['device_fault', 'fault_cleared']).map((e) => [e.type, e.payload.source])).toEqual([['device_fault', 'controller'], ['fault_cleared', 'controller']]);
    expect((await next.robot.backend()).citizenView().error).toBeNull();
  });
});

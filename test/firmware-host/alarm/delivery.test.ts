// Delivery loop against a real listening alarm centre that is stopped and restarted mid-way; and backoff on a ManualClock.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, SystemClock } from '../../../protocol/src/clock.js';
import { enqueueOutbox, migrateOutbox, outboxDepth } from '../../../firmware-host/src/alarm/outbox.js';
import { AlarmDelivery } from '../../../firmware-host/src/alarm/delivery.js';
import { registerDevice, startAlarmCenter, type RunningAlarmCenter } from '../../../alarm-center/src/server.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const wallWait = (ms: number) => new Promise((r) => globalThis.setTimeout(r, ms));
async function until(cond: () => boolean, limitMs: number) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error('timed out');
    await wallWait(20);
  }
}

function robotDb(dir: string) {
  const db = new Database(join(dir, 'robot.db'));
  migrateOutbox(db);
  cleanups.push(() => {
    db.close();
  });
  return db;
}

const health = () => ({ link: 'ok' as const, mcu: 'ok' as const, firmwareVersion: '1.2.3' });

describe('alarm delivery', () => {
  it('delivers every event exactly once across a centre stopped and restarted mid-way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-del-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const centreDb = join(dir, 'centre.db');
    const secret = registerDevice(centreDb, 'r-7');
    const clock = new SystemClock();
    let centre: RunningAlarmCenter | undefined = await startAlarmCenter({ port: 0, dbPath: centreDb, clock, logger: silent });
    const port = Number(new URL(centre.url).port);
    cleanups.push(() => centre?.close());
    const db = robotDb(dir);
    const delivery = new AlarmDelivery({ db, clock, url: centre.url, deviceId: 'r-7', secret, logger: silent, health, batchSize: 7, baseBackoffMs: 20, maxBackoffMs: 200, pollMs: 50 });
    cleanups.push(() => delivery.stop());
    let n = 0;
    const add = (k: number) => {
      for (let i = 0; i < k; i++) {
        n++;
        enqueueOutbox(db, { eventId: `ev-${n}`, type: n % 3 === 0 ? 'missed_dose' : 'dose_overdue', occurredAtMs: clock.now(), doseId: `dose-${Math.ceil(n / 2)}`, payload: { n } });
      }
      delivery.kick();
    };
    delivery.start();
    add(20);
    await until(() => outboxDepth(db) === 0, 10_000);
    await centre.close();
    centre = undefined;
    add(25);
    await wallWait(200);
    expect(outboxDepth(db)).toBe(25);
    expect(delivery.stats.failures).toBeGreaterThan(0);
    centre = await startAlarmCenter({ port, dbPath: centreDb, clock, logger: silent });
    add(5);
    await until(() => outboxDepth(db) === 0, 10_000);
    await centre.close();
    centre = undefined;
    const check = new Database(centreDb, { readonly: true });
    const rows = check.prepare(`SELECT event_id, count(*) c FROM events WHERE device_id = 'r-7' GROUP BY event_id`).all() as { c: number }[];
    const seqs = check.prepare(`SELECT max_seq m FROM devices`).get() as { m: number };
    check.close();
    expect(rows).toHaveLength(50);
    expect(rows.every((r) => r.c === 1)).toBe(true);
    expect(seqs.m).toBe(50);
    expect(delivery.stats.delivered + delivery.stats.duplicates).toBeGreaterThanOrEqual(50);
    expect(delivery.stats.heartbeats).toBeGreaterThanOrEqual(1);
  });

  it('sends the events of a refused batch one by one: a malformed one leaves the queue, the rest are delivered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-del-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const centreDb = join(dir, 'centre.db');
    const secret = registerDevice(centreDb, 'r-8');
    const clock = new SystemClock();
    const centre = await startAlarmCenter({ port: 0, dbPath: centreDb, clock, logger: silent });
    cleanups.push(() => centre.close());
    const db = robotDb(dir);
    const delivery = new AlarmDelivery({ db, clock, url: centre.url, deviceId: 'r-8', secret, logger: silent, health, batchSize: 10, baseBackoffMs: 20, maxBackoffMs: 200, pollMs: 50 });
    cleanups.push(() => delivery.stop());
    enqueueOutbox(db, { eventId: 'ok-1', type: 'missed_dose', occurredAtMs: clock.now(), doseId: 'd-1', payload: {} });
    // An event type this centre does not know (say, from newer robot software): the batch schema refuses it.
    enqueueOutbox(db, { eventId: 'bad-2', type: 'pouch_on_fire' as 'missed_dose', occurredAtMs: clock.now(), doseId: 'd-2', payload: {} });
    enqueueOutbox(db, { eventId: 'ok-3', type: 'dose_overdue', occurredAtMs: clock.now(), doseId: 'd-3', payload: {} });
    delivery.start();
    await until(() => outboxDepth(db) === 0, 10_000);
    expect(delivery.stats).toMatchObject({ delivered: 2, refused: 1 });
    const robotRows = db.prepare('SELECT event_id, delivered_at_ms IS NOT NULL AS delivered, refused_status FROM outbox ORDER BY seq').all();
    expect(robotRows).toEqual([
      { event_id: 'ok-1', delivered: 1, refused_status: null },
      { event_id: 'bad-2', delivered: 0, refused_status: 400 },
      { event_id: 'ok-3', delivered: 1, refused_status: null },
    ]);
    await centre.close();
    const check = new Database(centreDb, { readonly: true });
    const stored = check.prepare(`SELECT event_id FROM events WHERE device_id = 'r-8' ORDER BY event_id`).all();
    check.close();
    expect(stored).toEqual([{ event_id: 'ok-1' }, { event_id: 'ok-3' }]);
  });

  it('backs off exponentially with jitter on the injected clock and never throws', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-del-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = robotDb(dir);
    const clock = new ManualClock();
    const calls: number[] = [];
    const fetchDown = (async () => {
      calls.push(clock.now());
      throw new Error('ECONNREFUSED');
    }) as unknown as typeof fetch;
    const d = new AlarmDelivery({ db, clock, url: 'http://127.0.0.1:9', deviceId: 'r', secret: 's', logger: silent, health, fetch: fetchDown, baseBackoffMs: 1000, maxBackoffMs: 8000, random: () => 1 });
    enqueueOutbox(db, { eventId: 'a', type: 'missed_dose', occurredAtMs: 0, payload: {} });
    d.start();
    expect(() => d.kick()).not.toThrow();
    const flush = () => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 8; i++) {
      await flush();
      clock.runNext();
    }
    d.stop();
    const times = [...new Set(calls)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.slice(0, 5)).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(d.backoffMs(1)).toBe(1000);
    expect(d.backoffMs(3)).toBe(4000);
    expect(d.backoffMs(10)).toBe(8000);
    expect(new AlarmDelivery({ db, clock, url: '', deviceId: 'r', secret: 's', logger: silent, health, baseBackoffMs: 1000, random: () => 0 }).backoffMs(2)).toBe(1000);
    expect(outboxDepth(db)).toBe(1);
  });
});

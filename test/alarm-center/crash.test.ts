// Crash test: the centre runs as `dosis alarm-center` in a child, is SIGKILLed while a robot keeps sending, and restarts on the same file.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { enqueueOutbox, migrateOutbox, outboxDepth } from '../../firmware-host/src/alarm/outbox.js';
import { AlarmDelivery } from '../../firmware-host/src/alarm/delivery.js';
import { silent } from './helpers.js';
import { freePort, startCentre, until, wallWait } from './centre-process.js';

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'dosis-crash-'));
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('crash', () => {
  it('every event answered 2xx survives SIGKILL, and everything still held is delivered after restart, none twice', async () => {
    const dbPath = join(dir, 'centre.db');
    const secret = registerDevice(dbPath, 'robot-c');
    const port = await freePort();
    let child = await startCentre(port, dbPath, children);
    const clock = new SystemClock();
    const robot = new Database(join(dir, 'robot.db'));
    migrateOutbox(robot);
    const delivery = new AlarmDelivery({
      db: robot, clock, url: `http://127.0.0.1:${port}`, deviceId: 'robot-c', secret, logger: silent,
      health: () => ({ link: 'ok', mcu: 'ok', firmwareVersion: 't' }), batchSize: 3, baseBackoffMs: 25, maxBackoffMs: 200, pollMs: 20,
    });
    let n = 0;
    const add = (k: number) => {
      for (let i = 0; i < k; i++) {
        n++;
        enqueueOutbox(robot, { eventId: `c-${n}`, type: 'dose_failed', occurredAtMs: clock.now(), doseId: `d-${n}`, payload: { n } });
      }
      delivery.kick();
    };
    delivery.start();
    // A producer that keeps writing while the centre dies and comes back.
    let producing = true;
    const producer = (async () => {
      while (producing) {
        add(2);
        await wallWait(5);
      }
    })();
    const delivered = () => (robot.prepare('SELECT count(*) n FROM outbox WHERE delivered_at_ms IS NOT NULL').get() as { n: number }).n;
    await until(() => delivered() >= 40, 15_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const ackedBeforeKill = (robot.prepare('SELECT event_id FROM outbox WHERE delivered_at_ms IS NOT NULL').all() as { event_id: string }[]).map((r) => r.event_id);
    await wallWait(150);
    child = await startCentre(port, dbPath, children);
    await wallWait(200);
    producing = false;
    await producer;
    await until(() => outboxDepth(robot) === 0, 20_000);
    delivery.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    const centre = new Database(dbPath, { readonly: true });
    const stored = centre.prepare(`SELECT event_id, count(*) c FROM events WHERE device_id = 'robot-c' GROUP BY event_id`).all() as { event_id: string; c: number }[];
    const alerts = (centre.prepare('SELECT count(*) n FROM alerts').get() as { n: number }).n;
    centre.close();
    robot.close();
    const ids = new Set(stored.map((s) => s.event_id));
    expect(ackedBeforeKill.length).toBeGreaterThanOrEqual(40);
    for (const id of ackedBeforeKill) expect(ids.has(id)).toBe(true);
    expect(stored).toHaveLength(n);
    expect(stored.every((s) => s.c === 1)).toBe(true);
    expect(alerts).toBe(n);
  });
});

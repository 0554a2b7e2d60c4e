// Crash test with group commit at work: several robots deliver at once (so their requests share transactions),
// the centre (`dosis alarm-center` in a child) is SIGKILLed twice while they send, and restarts on the same file.
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
const dir = mkdtempSync(join(tmpdir(), 'dosis-crash-group-'));
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('crash with group commit', () => {
  it('loses and doubles no acknowledged event of several robots across two SIGKILLs', async () => {
    const dbPath = join(dir, 'centre.db');
    const port = await freePort();
    const clock = new SystemClock();
    const robots = ['rg-1', 'rg-2', 'rg-3', 'rg-4', 'rg-5'].map((id) => {
      const secret = registerDevice(dbPath, id);
      const db = new Database(join(dir, `${id}.db`));
      migrateOutbox(db);
      const delivery = new AlarmDelivery({
        db, clock, url: `http://127.0.0.1:${port}`, deviceId: id, secret, logger: silent,
        health: () => ({ link: 'ok', mcu: 'ok', firmwareVersion: 't' }), batchSize: 2, baseBackoffMs: 25, maxBackoffMs: 200, pollMs: 20,
      });
      return { id, db, delivery, n: 0 };
    });
    let child = await startCentre(port, dbPath, children);
    for (const r of robots) r.delivery.start();
    let producing = true;
    const producer = (async () => {
      while (producing) {
        for (const r of robots) {
          r.n++;
          enqueueOutbox(r.db, { eventId: `${r.id}-${r.n}`, type: 'dose_failed', occurredAtMs: clock.now(), doseId: `d-${r.n}`, payload: { n: r.n } });
          r.delivery.kick();
        }
        await wallWait(4);
      }
    })();
    const delivered = () => robots.reduce((s, r) => s + (r.db.prepare('SELECT count(*) n FROM outbox WHERE delivered_at_ms IS NOT NULL').get() as { n: number }).n, 0);
    const acked = new Set<string>();
    for (const atLeast of [60, 140]) {
      await until(() => delivered() >= atLeast, 20_000);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      for (const r of robots) for (const row of r.db.prepare('SELECT event_id FROM outbox WHERE delivered_at_ms IS NOT NULL').all() as { event_id: string }[]) acked.add(`${r.id} ${row.event_id}`);
      await wallWait(100);
      child = await startCentre(port, dbPath, children);
    }
    await wallWait(200);
    producing = false;
    await producer;
    await until(() => robots.every((r) => outboxDepth(r.db) === 0), 30_000);
    for (const r of robots) r.delivery.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    const centre = new Database(dbPath, { readonly: true });
    const stored = centre.prepare('SELECT device_id, event_id, count(*) c FROM events GROUP BY device_id, event_id').all() as { device_id: string; event_id: string; c: number }[];
    centre.close();
    const ids = new Set(stored.map((s) => `${s.device_id} ${s.event_id}`));
    expect(acked.size).toBeGreaterThanOrEqual(140);
    for (const id of acked) expect(ids.has(id)).toBe(true);
    expect(stored).toHaveLength(robots.reduce((s, r) => s + r.n, 0));
    expect(stored.every((s) => s.c === 1)).toBe(true);
    for (const r of robots) r.db.close();
  });
});

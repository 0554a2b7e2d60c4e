// The alarm centre's store alone: what a signed event's durable writes cost with no HTTP around them. Each request
// does what the device route does inside the group commit (its signature remembered, its event stored and folded
// into one of 64 live alerts, audited, counted), in groups of 1, 4 and 8 requests per transaction, each group
// awaited (COMMIT and fsync) before the next, on a database file. The floor under the centre's figures in
// alarm-bench.ts: a group of 4 is what 10 connections give it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../../protocol/src/clock.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { openDatabase } from '../../alarm-center/src/store/database.js';
import { GroupCommit } from '../../alarm-center/src/store/group-commit.js';
import { rememberSignature } from '../../alarm-center/src/store/accounts.js';
import { ingestEvents } from '../../alarm-center/src/store/alerts.js';

export type StoreFigures = { group: number; cpuUsPerRequest: number; requestsPerSecond: number }[];

export async function benchStore(opts: { dbDir?: string | undefined; requests?: number; groups?: number[] } = {}): Promise<StoreFigures> {
  const requests = opts.requests ?? 40_000;
  const clock = new SystemClock();
  const figures: StoreFigures = [];
  for (const group of opts.groups ?? [1, 4, 8]) {
    const dir = mkdtempSync(join(opts.dbDir ?? tmpdir(), 'dosis-store-bench-'));
    const path = join(dir, 'bench.db');
    registerDevice(path, 'bench-1');
    const db = openDatabase(path);
    const writes = new GroupCommit(db);
    try {
      const signatures = Array.from({ length: requests }, () => randomBytes(32).toString('hex'));
      const request = (n: number) =>
        writes.run(() => {
          const now = clock.now();
          if (!rememberSignature(db, signatures[n]!, now)) throw new Error('replayed');
          const type = n % 2 ? 'dose_overdue' : 'missed_dose';
          return ingestEvents(db, 'bench-1', [{ eventId: `g${group}-${n}`, seq: n + 1, type, occurredAtMs: now, doseId: `d${n % 64}`, payload: { slot: n % 28 } }], now);
        });
      const t0 = clock.now();
      const c0 = process.cpuUsage();
      for (let n = 0; n < requests; n += group) {
        const results = await Promise.all(Array.from({ length: Math.min(group, requests - n) }, (_, i) => request(n + i)));
        if (results.some((r) => r[0]?.status !== 'stored')) throw new Error('store bench: an event was not stored');
      }
      const c = process.cpuUsage(c0);
      const seconds = Math.max(1, clock.now() - t0) / 1000;
      figures.push({ group, cpuUsPerRequest: (c.user + c.system) / requests, requestsPerSecond: requests / seconds });
      const stored = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
      if (stored !== requests) throw new Error(`store bench: ${stored} events stored for ${requests} requests`);
    } finally {
      await writes.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const f = figures.at(-1)!;
    process.stdout.write(`store alone, ${String(group).padStart(2)} per transaction: ${f.cpuUsPerRequest.toFixed(1).padStart(5)} µs CPU per request, ${f.requestsPerSecond.toFixed(0).padStart(6)} requests/s (database in ${opts.dbDir ?? tmpdir()})\n`);
  }
  return figures;
}

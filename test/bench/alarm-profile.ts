// Runs the alarm centre alone under the bench's load client for profiling (node --cpu-prof or perf):
// `node --import tsx test/bench/alarm-profile.ts [seconds] [dbDir]`. Prints the server's CPU per request.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SystemClock } from '../../protocol/src/clock.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { groupCommitFor } from '../../alarm-center/src/store/group-commit.js';
import { runClient } from './alarm-bench.js';

const seconds = Number(process.argv[2] ?? 8);
const dir = mkdtempSync(join(process.argv[3] ?? '/dev/shm', 'dosis-prof-'));
try {
  const dbPath = join(dir, 'bench.db');
  const secret = registerDevice(dbPath, 'bench-1');
  const centre = await buildApp({ dbPath, clock: new SystemClock(), logger: pino({ level: 'silent' }), config: { rateLimitPerMinute: 0 } });
  const url = await centre.listen({ port: 0, host: '127.0.0.1' });
  const c0 = process.cpuUsage();
  const r = await runClient({ url, path: '/v1/devices/bench-1/events', connections: 10, durationS: seconds, kind: 'event', deviceId: 'bench-1', secret, runId: 'p', presign: Number(process.env.PRESIGN ?? 0) });
  const c = process.cpuUsage(c0);
  const s = groupCommitFor(centre.db).stats;
  process.stdout.write(`${r.reqPerSec.toFixed(0)} req/s p99 ${r.p99Ms} ms; CPU ${((c.user + c.system) / r.total).toFixed(1)} µs/req (user ${(c.user / r.total).toFixed(1)}, system ${(c.system / r.total).toFixed(1)}); ${(s.requests / s.commits).toFixed(1)} per commit\n`);
  await centre.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

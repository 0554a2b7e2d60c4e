// Alarm centre ingestion speed: signed event posts next to a bare fastify route, same run, same machine (autocannon).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import pino from 'pino';
import { SystemClock } from '../../protocol/src/clock.js';
import { registerDevice, startAlarmCenter } from '../../alarm-center/src/server.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';

// autocannon ships no type declarations; this is the part of its API used here.
type AcRequest = { method?: string; path?: string; body?: string; headers?: Record<string, string>; setupRequest?: (req: AcRequest) => AcRequest };
type AcOptions = { url: string; method?: string; body?: string; headers?: Record<string, string>; connections: number; duration: number; requests?: AcRequest[] };
type AcResult = { requests: { average: number; total: number }; latency: { p99: number }; non2xx: number };
const autocannon = createRequire(import.meta.url)('autocannon') as (o: AcOptions, cb: (err: Error | null, res: AcResult) => void) => unknown;

type Figures = { name: string; reqPerSec: number; p99Ms: number; non2xx: number; total: number };

function run(opts: AcOptions): Promise<AcResult> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export async function benchAlarm(durationS = 5): Promise<Figures[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-bench-'));
  const out: Figures[] = [];
  try {
    const bare = Fastify();
    bare.post('/bare', async () => ({ ok: true }));
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
    const b = await run({ url: `${bareUrl}/bare`, method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' }, connections: 10, duration: durationS });
    out.push({ name: 'bare fastify route', reqPerSec: b.requests.average, p99Ms: b.latency.p99, non2xx: b.non2xx, total: b.requests.total });
    await bare.close();

    const dbPath = join(dir, 'bench.db');
    const secret = registerDevice(dbPath, 'bench-1');
    const clock = new SystemClock();
    const centre = await startAlarmCenter({ port: 0, dbPath, clock, logger: pino({ level: 'silent' }), config: { rateLimitPerMinute: 10_000_000 } });
    const path = '/v1/devices/bench-1/events';
    let i = 0;
    // Each request is a new event with a fresh signature, as a robot draining its outbox would send.
    const s = await run({
      url: centre.url,
      connections: 10,
      duration: durationS,
      requests: [{
        method: 'POST',
        path,
        setupRequest: (req) => {
          i++;
          const body = JSON.stringify({ eventId: `b-${i}`, seq: i, type: 'dose_failed', occurredAtMs: clock.now(), doseId: `d-${i}`, payload: { slot: i % 28 } });
          return { ...req, body, headers: { 'content-type': 'application/json', ...signedHeaders('bench-1', secret, 'POST', path, clock.now(), body) } };
        },
      }],
    });
    out.push({ name: 'signed event ingestion', reqPerSec: s.requests.average, p99Ms: s.latency.p99, non2xx: s.non2xx, total: s.requests.total });
    await centre.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const f of out) process.stdout.write(`${f.name.padEnd(26)} ${f.reqPerSec.toFixed(0).padStart(7)} req/s   p99 ${String(f.p99Ms).padStart(4)} ms   non-2xx ${f.non2xx}/${f.total}\n`);
  return out;
}

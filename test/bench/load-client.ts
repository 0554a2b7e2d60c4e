// The benchmarks' HTTP client, run in its own process so that making and signing requests does not compete
// with serving them on the server's event loop. Input: one JSON argument (LoadSpec); output: one JSON line (LoadResult).
import { createRequire } from 'node:module';
import { signedHeaders } from '../../protocol/src/centre/signing.js';

export type LoadSpec = {
  url: string;
  path: string;
  connections: number;
  durationS: number;
  /** 'bare': the same small JSON body every time; 'event': a new signed event per request, as a robot sends them. */
  kind: 'bare' | 'event';
  deviceId?: string;
  secret?: string;
  /** Distinguishes the event ids of successive runs against one database. */
  runId?: string;
  /** 'event': how many requests to sign before the run starts (the rest are signed as they are sent). */
  presign?: number;
};
export type LoadResult = { reqPerSec: number; p50Ms: number; p99Ms: number; non2xx: number; errors: number; total: number };

// autocannon ships no type declarations; this is the part of its API used here.
type AcRequest = { method?: string; path?: string; body?: string; headers?: Record<string, string>; setupRequest?: (req: AcRequest) => AcRequest };
type AcOptions = { url: string; method?: string; body?: string; headers?: Record<string, string>; connections: number; duration: number; requests?: AcRequest[] };
type AcResult = { requests: { average: number; total: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
const autocannon = createRequire(import.meta.url)('autocannon') as (o: AcOptions, cb: (err: Error | null, res: AcResult) => void) => unknown;

function load(spec: LoadSpec): Promise<LoadResult> {
  const base = { url: spec.url, connections: spec.connections, duration: spec.durationS };
  let opts: AcOptions;
  if (spec.kind === 'bare') {
    opts = { ...base, requests: [{ method: 'POST', path: spec.path, body: '{"x":1}', headers: { 'content-type': 'application/json' } }] };
  } else {
    let i = 0;
    const run = spec.runId ?? 'r';
    const make = (n: number) => {
      const now = Date.now();
      // A new event each time, about one of 64 doses, so each one is stored, audited and folded into a live
      // alert the way a robot's reports are; a new alert per request would instead measure the scheduler's
      // pass over tens of thousands of open alerts, which no centre has.
      const type = n % 2 ? 'dose_overdue' : 'missed_dose';
      const body = JSON.stringify({ eventId: `${run}-${n}`, seq: n, type, occurredAtMs: now, doseId: `${run}-d${n % 64}`, payload: { slot: n % 28 } });
      return { body, headers: { 'content-type': 'application/json', ...signedHeaders(spec.deviceId!, spec.secret!, 'POST', spec.path, now, body) } };
    };
    // Signed before the clock starts, as many as the run can use (up to a bound; then signed as sent), so the client's
    // per-request work is the same as for the bare route's fixed request: on a machine of few cores, signing in
    // the client would take processor time from the server being measured. Each is signed within the centre's window
    // of when it is sent (runs are seconds long, the window minutes).
    const ready = Array.from({ length: Math.min(spec.presign ?? 0, 200_000) }, (_, n) => make(n + 1));
    opts = {
      ...base,
      requests: [{
        method: 'POST',
        path: spec.path,
        setupRequest: (req) => {
          i++;
          return { ...req, ...(ready[i - 1] ?? make(i)) };
        },
      }],
    };
  }
  return new Promise((resolve, reject) =>
    autocannon(opts, (err, r) =>
      err ? reject(err) : resolve({ reqPerSec: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors, total: r.requests.total }),
    ),
  );
}

process.stdout.write(`${JSON.stringify(await load(JSON.parse(process.argv[2]!) as LoadSpec))}\n`);

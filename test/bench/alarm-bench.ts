// Alarm centre ingestion speed: signed, durable event posts as a ratio to a bare fastify route, both measured in the
// same run on the same machine, at 10 connections, with the client (autocannon) in its own process and the rate
// limits off. Runs alternate (bare, signed, bare, signed, ...) and the medians are compared, so a neighbour's load
// spike shifts both sides rather than one.
//
// Two reference points show where a signed request's time goes: the same signed events posted to a route that
// checks them as the centre does (signature, schema) and stores nothing, and to the centre on an in-memory
// database (every statement of the durable path, no file and no fsync).
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import pino from 'pino';
import { SystemClock, type Clock } from '../../protocol/src/clock.js';
import { DeviceParams, EventBody, EventReply } from '../../protocol/src/centre/contract.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyRequest } from '../../protocol/src/centre/signing.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { registerDevice as registerDeviceRow } from '../../alarm-center/src/store/accounts.js';
import { groupCommitFor } from '../../alarm-center/src/store/group-commit.js';
import type { LoadResult, LoadSpec } from './load-client.js';

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));

/** Runs the load client in a child process (through tsx, as `npm run bench` itself runs) and reads its one line of JSON. */
export function runClient(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load client exited with ${code}`))));
  });
}

export type AlarmFigures = {
  bare: LoadResult[];
  signed: LoadResult[];
  /** Signed events checked as the centre checks them, stored nowhere. */
  unstored: LoadResult[];
  /** Signed events into the centre on an in-memory database. */
  memory: LoadResult[];
  /** The server's CPU (this process: user + system) per request answered, in µs, median over the runs. */
  bareCpuUs: number;
  signedCpuUs: number;
  unstoredCpuUs: number;
  memoryCpuUs: number;
  ratio: number;
  /** Requests per transaction and per fsync over all signed runs. */
  perCommit: number;
  perSync: number;
  /** Median fdatasync time in the database's directory, and the ratio to bare that it allows at most. */
  syncMs: number;
  ceiling: number;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchAlarm(opts: { runs?: number; durationS?: number; connections?: number; dbDir?: string | undefined } = {}): Promise<AlarmFigures> {
  const runs = opts.runs ?? 3;
  const durationS = opts.durationS ?? 5;
  const connections = opts.connections ?? 10;
  const dir = mkdtempSync(join(opts.dbDir ?? tmpdir(), 'dosis-bench-'));
  let bare: FastifyInstance | undefined;
  let centre: FastifyInstance | undefined;
  let inMemory: FastifyInstance | undefined;
  let unstored: FastifyInstance | undefined;
  const figures: AlarmFigures = {
    bare: [], signed: [], unstored: [], memory: [], bareCpuUs: 0, signedCpuUs: 0, unstoredCpuUs: 0, memoryCpuUs: 0, ratio: 0, perCommit: 0, perSync: 0, syncMs: 0, ceiling: 0,
  };
  try {
    bare = Fastify();
    bare.post('/bare', async () => ({ ok: true }));
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });

    // A real database file, by default in tmpdir (on this machine the same disk a deployed centre would use);
    // --db-dir /dev/shm shows what is left of the cost when fsync is free.
    const dbPath = join(dir, 'bench.db');
    const secret = registerDevice(dbPath, 'bench-1');
    centre = await buildApp({ dbPath, clock: new SystemClock(), logger: pino({ level: 'silent' }), config: { rateLimitPerMinute: 0 } });
    const centreUrl = await centre.listen({ port: 0, host: '127.0.0.1' });
    const path = '/v1/devices/bench-1/events';
    inMemory = await buildApp({ dbPath: ':memory:', clock: new SystemClock(), logger: pino({ level: 'silent' }), config: { rateLimitPerMinute: 0 } });
    const memorySecret = registerDeviceRow(inMemory.db, inMemory.secretKey, 'bench-1', inMemory.clock.now());
    const memoryUrl = await inMemory.listen({ port: 0, host: '127.0.0.1' });
    unstored = unstoredRoute(path, secret);
    const unstoredUrl = await unstored.listen({ port: 0, host: '127.0.0.1' });

    const bareCpu: number[] = [];
    const signedCpu: number[] = [];
    const unstoredCpu: number[] = [];
    const memoryCpu: number[] = [];
    // The client runs in its own process, so this process's CPU is the server's (and its fsyncs' threads).
    const cpuPerRequest = async (spec: LoadSpec, into: number[]): Promise<LoadResult> => {
      const c0 = process.cpuUsage();
      const res = await runClient(spec);
      const c = process.cpuUsage(c0);
      into.push((c.user + c.system) / Math.max(1, res.total));
      return res;
    };
    for (let r = 0; r < runs; r++) {
      const b = await cpuPerRequest({ url: bareUrl, path: '/bare', connections, durationS, kind: 'bare' }, bareCpu);
      figures.bare.push(b);
      print(`bare fastify route (run ${r + 1})`, b, bareCpu.at(-1)!);
      // Enough signed in advance for the bare route's rate over the run, the most the centre could take (short runs
      // only: a request signed minutes before it is sent would fall outside the centre's window).
      const presign = durationS <= 60 ? Math.ceil(b.reqPerSec * durationS * 1.2) : 0;
      const s = await cpuPerRequest({ url: centreUrl, path, connections, durationS, kind: 'event', deviceId: 'bench-1', secret, runId: `r${r}`, presign }, signedCpu);
      figures.signed.push(s);
      print(`signed durable event (run ${r + 1})`, s, signedCpu.at(-1)!);
      const u = await cpuPerRequest({ url: unstoredUrl, path, connections, durationS, kind: 'event', deviceId: 'bench-1', secret, runId: `u${r}`, presign }, unstoredCpu);
      figures.unstored.push(u);
      print(`  signed, checked, not stored`, u, unstoredCpu.at(-1)!);
      const m = await cpuPerRequest({ url: memoryUrl, path, connections, durationS, kind: 'event', deviceId: 'bench-1', secret: memorySecret, runId: `m${r}`, presign }, memoryCpu);
      figures.memory.push(m);
      print(`  signed, centre in memory`, m, memoryCpu.at(-1)!);
    }
    figures.bareCpuUs = median(bareCpu);
    figures.signedCpuUs = median(signedCpu);
    figures.unstoredCpuUs = median(unstoredCpu);
    figures.memoryCpuUs = median(memoryCpu);
    const stats = groupCommitFor(centre.db).stats;
    figures.perCommit = stats.requests / Math.max(1, stats.commits);
    figures.perSync = stats.requests / Math.max(1, stats.syncs);
    const stored = (centre.db.prepare('SELECT count(*) n FROM events').get() as { n: number }).n;
    const answered = figures.signed.reduce((n, s) => n + s.total - s.non2xx, 0);
    const rate = (xs: LoadResult[]) => median(xs.map((x) => x.reqPerSec));
    const bareRate = rate(figures.bare);
    figures.ratio = rate(figures.signed) / bareRate;
    const share = (xs: LoadResult[]) => `${rate(xs).toFixed(0)} req/s = ${((rate(xs) / bareRate) * 100).toFixed(1)} %`;
    // Each request is answered only after an fsync begun after its COMMIT, so with N connections (one request each in
    // flight) no centre can answer more than N per fsync time: the disk's ceiling, whatever the CPU does.
    const syncMs = fdatasyncMs(dir);
    figures.syncMs = syncMs;
    figures.ceiling = connections / (syncMs / 1000) / bareRate;
    process.stdout.write(
      `\nmedian of ${runs}: bare ${bareRate.toFixed(0)} req/s, signed ${rate(figures.signed).toFixed(0)} req/s` +
        ` = ${(figures.ratio * 100).toFixed(1)} % of bare; signed p99 ${median(figures.signed.map((s) => s.p99Ms))} ms (${connections} connections, database in ${opts.dbDir ?? tmpdir()})\n` +
        `server CPU per request: bare ${figures.bareCpuUs.toFixed(0)} µs, signed ${figures.signedCpuUs.toFixed(0)} µs\n` +
        `where it goes: signed, checked, not stored ${share(figures.unstored)} (${figures.unstoredCpuUs.toFixed(0)} µs); ` +
        `centre, database in memory ${share(figures.memory)} (${figures.memoryCpuUs.toFixed(0)} µs); so checking adds ` +
        `${(figures.unstoredCpuUs - figures.bareCpuUs).toFixed(0)} µs to bare, the centre's statements and hooks ${(figures.memoryCpuUs - figures.unstoredCpuUs).toFixed(0)} µs, ` +
        `the file and its fsyncs ${(figures.signedCpuUs - figures.memoryCpuUs).toFixed(0)} µs; 40 % of bare leaves ${(1e6 / (0.4 * bareRate)).toFixed(0)} µs a request in all\n` +
        `group commit: ${figures.perCommit.toFixed(1)} requests per transaction, ${figures.perSync.toFixed(1)} per fsync, ` +
        `${groupCommitFor(centre.db).checkpoints?.checkpoints ?? 0} checkpoints (${stats.catchUps} waited for); ` +
        `${stored} events stored for ${answered} answered 2xx (autocannon counts a few answered after its window)\n` +
        `disk: fdatasync ${syncMs.toFixed(3)} ms here, so at ${connections} connections durable answers cannot pass ` +
        `${(connections / (syncMs / 1000)).toFixed(0)} req/s = ${(figures.ceiling * 100).toFixed(1)} % of bare on this disk\n`,
    );
  } finally {
    await bare?.close();
    await centre?.close();
    await inMemory?.close();
    await unstored?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}

/**
 * A server whose one route checks a signed event as the centre's device route does, with the same pieces:
 * the raw body kept for the signature, JSON parsed from it, the signature and its window, the contract's schemas for
 * body and answer. It stores nothing, so the difference to the centre is the database's share.
 */
export function unstoredRoute(path: string, secret: string, clock: Clock = new SystemClock()): FastifyInstance {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    try {
      done(null, JSON.parse((body as Buffer).toString('utf8')));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.post(path.replace('bench-1', ':deviceId'), {
    preValidation: (req, _reply, done) => {
      const v = verifyRequest(secret, req.method, req.url, String(req.headers[TIMESTAMP_HEADER]), req.rawBody ?? '', String(req.headers[SIGNATURE_HEADER]), clock.now());
      done(v.ok ? undefined : Object.assign(new Error(v.reason), { statusCode: 401 }));
    },
    schema: { params: DeviceParams, body: EventBody, response: { 201: EventReply } },
  }, async (req, reply) => reply.code(201).send({ eventId: req.body.eventId, status: 'stored', alertId: null }));
  return app;
}

function print(name: string, f: LoadResult, cpuUs: number): void {
  process.stdout.write(
    `${name.padEnd(34)} ${f.reqPerSec.toFixed(0).padStart(7)} req/s   p50 ${String(f.p50Ms).padStart(3)} ms   p99 ${String(f.p99Ms).padStart(4)} ms   ` +
      `CPU ${cpuUs.toFixed(0).padStart(4)} µs/req   non-2xx ${f.non2xx}/${f.total}\n`,
  );
}

/** Median time of a small write plus fdatasync in `dir` (what each group commit waits for), in ms. */
function fdatasyncMs(dir: string, n = 100): number {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      writeSync(fd, 'x'.repeat(512));
      fdatasyncSync(fd);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  return median(times);
}

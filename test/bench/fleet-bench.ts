// National scale: a fleet of signed robots against one centre on loopback, at the heartbeat interval (compressed in
// time) with events at the reference profile's rates, then a reconnect storm in which every robot flushes the outbox
// of an outage at once. Prints the steady rate and answer times, the storm's time to drain and p99, and checks at the
// centre that every event sent is stored exactly once. Bounded: the robots stop at a deadline and report what was left.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { SystemClock } from '../../protocol/src/clock.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { DEFAULT_CONFIG } from '../../alarm-center/src/config.js';
import { loadSecretKey, registerDevice } from '../../alarm-center/src/store/accounts.js';
import { openDatabase } from '../../alarm-center/src/store/database.js';
import { groupCommitFor } from '../../alarm-center/src/store/group-commit.js';
import type { FleetRates, FleetResult, FleetSpec, PhaseResult } from './fleet-client.js';

const CLIENT = fileURLToPath(new URL('./fleet-client.ts', import.meta.url));
const PROFILE = fileURLToPath(new URL('../../device-sim/profiles/reference.json', import.meta.url));

export type FleetOptions = { robots?: number; compress?: number; steadyIntervals?: number; outboxHours?: number; sockets?: number; deadlineS?: number };
export type FleetFigures = FleetResult & { stored: number; lost: number; doubled: number; heartbeatsSeen: number };

/** The reference profile's citizen and fault rates, as the events a robot sends (see the profile's assumptions). */
function referenceRates(): FleetRates {
  const profile = JSON.parse(readFileSync(PROFILE, 'utf8')) as { citizen: { forgetRate: number } };
  return {
    // Four doses a day, a roll a week: a typical regimen, not a figure from the profile.
    dosesPerDay: 4,
    forgetRate: profile.citizen.forgetRate,
    // The reference fleet's error rate per dosing (0.12 %), the rate a count-only robot would reach on the profile's faults.
    failRate: 0.0012,
    lowSupplyPerDay: 1 / 7,
  };
}

function runClient(spec: FleetSpec): Promise<FleetResult> {
  return new Promise<FleetResult>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    // The robots stop at their deadline; this is the backstop if they cannot.
    const backstop = setTimeout(() => child.kill('SIGKILL'), spec.deadlineMs + 60_000);
    child.on('exit', () => clearTimeout(backstop));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as FleetResult) : reject(new Error(`fleet client exited with ${code}`))));
  });
}

export async function benchFleet(opts: FleetOptions = {}): Promise<FleetFigures> {
  const robots = opts.robots ?? 40_000;
  const dir = mkdtempSync(join(tmpdir(), 'dosis-fleet-'));
  const dbPath = join(dir, 'fleet.db');
  const line = (s: string) => process.stdout.write(`${s}\n`);
  try {
    let t0 = performance.now();
    const db = openDatabase(dbPath);
    const key = loadSecretKey(dbPath);
    const secrets: [string, string][] = [];
    db.transaction(() => {
      for (let i = 0; i < robots; i++) {
        const id = `fleet-${String(i).padStart(5, '0')}`;
        secrets.push([id, registerDevice(db, key, id, Date.now())]);
      }
    })();
    db.close();
    const secretsFile = join(dir, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
    line(`${robots.toLocaleString('en-GB')} robots registered in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Per-address limits off: on loopback the whole fleet shares one address, which no real fleet does.
    const centre = await buildApp({ dbPath, clock: new SystemClock(), logger: pino({ level: 'silent' }), config: { rateLimitPerMinute: 0 } });
    const url = await centre.listen({ port: 0, host: '127.0.0.1' });
    const spec: FleetSpec = {
      url, secretsFile, heartbeatMs: DEFAULT_CONFIG.heartbeatIntervalMs, compress: opts.compress ?? 5, steadyIntervals: opts.steadyIntervals ?? 1,
      outboxHours: opts.outboxHours ?? 1, sockets: opts.sockets ?? 200, seed: 20_260_105, rates: referenceRates(), deadlineMs: (opts.deadlineS ?? 600) * 1000,
    };
    line(`steady: a heartbeat every ${spec.heartbeatMs / 60_000} min per robot, compressed ${spec.compress}× (${((robots * spec.compress) / (spec.heartbeatMs / 1000)).toFixed(0)} robots/s), ` +
      `${spec.steadyIntervals} interval(s); then every robot flushes a ${spec.outboxHours} h outbox at once over ${spec.sockets} sockets`);
    let result: FleetResult;
    let stats: { commits: number; requests: number; syncs: number; catchUps: number };
    let checkpoints: { checkpoints: number } | undefined;
    let counts: { n: number; d: number };
    let heartbeatsSeen: number;
    try {
      result = await runClient(spec);
      stats = { ...groupCommitFor(centre.db).stats };
      checkpoints = groupCommitFor(centre.db).checkpoints;
      counts = centre.db.prepare(`SELECT count(*) n, count(DISTINCT device_id || ' ' || event_id) d FROM events`).get() as { n: number; d: number };
      heartbeatsSeen = (centre.db.prepare('SELECT count(*) n FROM devices WHERE last_heartbeat_at_ms IS NOT NULL').get() as { n: number }).n;
    } finally {
      await centre.close();
    }
    const phase = (name: string, p: PhaseResult) =>
      line(`${name.padEnd(7)} ${p.requests.toLocaleString('en-GB').padStart(7)} requests (${p.events} events) in ${(p.wallMs / 1000).toFixed(1)} s = ${((p.requests / p.wallMs) * 1000).toFixed(0)} req/s; ` +
        `answer p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, max ${p.maxMs} ms; robot done p99 ${(p.robotP99Ms / 1000).toFixed(1)} s; retries ${p.retries}; unfinished ${p.unfinished}`);
    phase('steady', result.steady);
    phase('storm', result.storm);
    const figures: FleetFigures = { ...result, stored: counts.n, lost: result.eventsSent - counts.d, doubled: counts.n - counts.d, heartbeatsSeen };
    line(`storm drained in ${(result.storm.wallMs / 1000).toFixed(1)} s; events sent ${result.eventsSent}, stored ${counts.n}, lost ${figures.lost}, doubled ${figures.doubled}; ` +
      `robots heard ${heartbeatsSeen}/${robots}; ${(stats.requests / Math.max(1, stats.commits)).toFixed(1)} requests per transaction, ${(stats.requests / Math.max(1, stats.syncs)).toFixed(1)} per fsync; ` +
      `${checkpoints?.checkpoints ?? 0} checkpoints, ${stats.catchUps} waited for`);
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

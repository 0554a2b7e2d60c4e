// The fleet bench's robots, in their own process: many signed robots over a bounded pool of keep-alive sockets.
// Input: one JSON argument (FleetSpec); output: one JSON line (FleetResult). Stops by itself at `deadlineMs`.
//
// Phase 1 (steady): every robot heartbeats once per interval, at its own offset, with events drawn at the reference
// rates; the interval is compressed by `compress`. Phase 2 (reconnect storm): every robot at once sends the events
// of an `outboxHours` outage (in batches of 50, oldest first) and then a heartbeat. A request answered other than
// 2xx, or not at all, is retried with a fresh signature after a short backoff, as the robot's delivery loop does.
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { signedHeaders } from '../../protocol/src/centre/signing.js';

export type FleetRates = {
  dosesPerDay: number;
  /** Per dose: the citizen forgets it (the robot reports dose_overdue, then missed_dose). */
  forgetRate: number;
  /** Per dose: the dosing fails (dose_failed). */
  failRate: number;
  /** Per robot per day: a low_supply warning. */
  lowSupplyPerDay: number;
};
export type FleetSpec = {
  url: string;
  secretsFile: string;
  heartbeatMs: number;
  compress: number;
  steadyIntervals: number;
  outboxHours: number;
  sockets: number;
  seed: number;
  rates: FleetRates;
  deadlineMs: number;
};
export type PhaseResult = {
  requests: number;
  events: number;
  retries: number;
  wallMs: number;
  /** Answer time per request, from when a socket took it to the end of its 2xx answer. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Robots' own view: from when the robot meant to send to when its last request was answered. */
  robotP99Ms: number;
  unfinished: number;
};
export type FleetResult = { robots: number; steady: PhaseResult; storm: PhaseResult; eventsSent: number };

const spec = JSON.parse(process.argv[2]!) as FleetSpec;
const secrets = JSON.parse(readFileSync(spec.secretsFile, 'utf8')) as [string, string][];
const agent = new Agent({ keepAlive: true, maxSockets: spec.sockets });
const { hostname, port } = new URL(spec.url);
const started = performance.now();
const deadline = () => performance.now() - started > spec.deadlineMs;

// Small, seeded, fast: the fleet is the same every run.
let state = spec.seed >>> 0 || 1;
const random = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4_294_967_296;
};

type Ev = { eventId: string; seq: number; type: string; occurredAtMs: number; doseId?: string; payload: Record<string, number> };
const seqs = new Map<string, number>();
let eventsSent = 0;
/** The events one robot produces in `hours` of its life, at the reference rates. */
function eventsFor(deviceId: string, hours: number, atMs: number): Ev[] {
  const out: Ev[] = [];
  const next = () => {
    const s = (seqs.get(deviceId) ?? 0) + 1;
    seqs.set(deviceId, s);
    return s;
  };
  const doses = spec.rates.dosesPerDay * (hours / 24);
  for (let d = Math.floor(doses) + (random() < doses % 1 ? 1 : 0); d > 0; d--) {
    const doseId = `dose-${next()}`;
    if (random() < spec.rates.forgetRate) {
      for (const type of ['dose_overdue', 'missed_dose']) {
        const seq = next();
        out.push({ eventId: `ev-${seq}`, seq, type, occurredAtMs: atMs, doseId, payload: {} });
      }
    } else if (random() < spec.rates.failRate) {
      const seq = next();
      out.push({ eventId: `ev-${seq}`, seq, type: 'dose_failed', occurredAtMs: atMs, doseId, payload: { slot: seq % 28 } });
    }
  }
  if (random() < spec.rates.lowSupplyPerDay * (hours / 24)) {
    const seq = next();
    out.push({ eventId: `ev-${seq}`, seq, type: 'low_supply', occurredAtMs: atMs, payload: { slotsLeft: 3 } });
  }
  eventsSent += out.length;
  return out;
}

type Tally = { latencies: number[]; robots: number[]; retries: number; requests: number; events: number; unfinished: number };
const tally = (): Tally => ({ latencies: [], robots: [], retries: 0, requests: 0, events: 0, unfinished: 0 });

function postOnce(deviceId: string, secret: string, path: string, body: string, t: Tally): Promise<number> {
  return new Promise((resolve) => {
    const full = `/v1/devices/${deviceId}${path}`;
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...signedHeaders(deviceId, secret, 'POST', full, Date.now(), body) };
    let onSocketAt = 0;
    const req = request({ agent, hostname, port, method: 'POST', path: full, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode! < 300) t.latencies.push(performance.now() - onSocketAt);
        resolve(res.statusCode!);
      });
    });
    req.on('socket', () => (onSocketAt = performance.now()));
    // Unanswered for 30 s counts as a failure (then retried, until the deadline).
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function post(deviceId: string, secret: string, path: string, body: string, t: Tally): Promise<boolean> {
  t.requests++;
  for (let attempt = 0; ; attempt++) {
    const status = await postOnce(deviceId, secret, path, body, t);
    if (status >= 200 && status < 300) return true;
    if (deadline()) return false;
    t.retries++;
    await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** attempt) * (0.5 + random())));
  }
}

// A heartbeat carries the day's running dosing totals, as robots send them (an upsert at the centre).
const day = new Date().toISOString().slice(0, 10);
const heartbeat = () =>
  JSON.stringify({
    sentAtMs: Date.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: 'fleet-1',
    report: { day, dosings: 2, pills: 9, correct: 2, green: 0, yellow: 0, missed: 0, taken: 2 },
  });

/** One robot's turn: its events (batches of 50, oldest first), then its heartbeat. */
async function robotTurn(id: string, secret: string, events: Ev[], t: Tally, plannedAt: number): Promise<void> {
  for (let i = 0; i < events.length; i += 50) {
    const batch = events.slice(i, i + 50);
    if (!(await post(id, secret, '/events/batch', JSON.stringify({ events: batch }), t))) return void t.unfinished++;
    t.events += batch.length;
  }
  if (!(await post(id, secret, '/heartbeat', heartbeat(), t))) return void t.unfinished++;
  t.robots.push(performance.now() - plannedAt);
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = Float64Array.from(xs).sort();
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
}
const summary = (t: Tally, wallMs: number): PhaseResult => ({
  requests: t.requests, events: t.events, retries: t.retries, wallMs: Math.round(wallMs),
  p50Ms: pct(t.latencies, 50), p99Ms: pct(t.latencies, 99), maxMs: pct(t.latencies, 100), robotP99Ms: pct(t.robots, 99), unfinished: t.unfinished,
});

/** Steady state: robot i heartbeats at (i / n) of each compressed interval, with the events of that interval. */
async function steady(): Promise<PhaseResult> {
  const t = tally();
  const n = secrets.length;
  const intervalWallMs = spec.heartbeatMs / spec.compress;
  const hours = spec.heartbeatMs / 3_600_000;
  const begin = performance.now();
  const turns: Promise<void>[] = [];
  for (let k = 0; k < spec.steadyIntervals * n && !deadline(); k++) {
    const plannedAt = begin + (k / n) * intervalWallMs;
    const wait = plannedAt - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const [id, secret] = secrets[k % n]!;
    turns.push(robotTurn(id, secret, eventsFor(id, hours, Date.now()), t, plannedAt));
  }
  await Promise.all(turns);
  return summary(t, performance.now() - begin);
}

/** The reconnect storm: every robot at once, each with the outbox of an outage. */
async function storm(): Promise<PhaseResult> {
  const t = tally();
  const begin = performance.now();
  const atMs = Date.now();
  await Promise.all(secrets.map(([id, secret]) => robotTurn(id, secret, eventsFor(id, spec.outboxHours, atMs), t, begin)));
  return summary(t, performance.now() - begin);
}

const steadyResult = await steady();
const stormResult = await storm();
agent.destroy();
const result: FleetResult = { robots: secrets.length, steady: steadyResult, storm: stormResult, eventsSent };
process.stdout.write(`${JSON.stringify(result)}\n`);

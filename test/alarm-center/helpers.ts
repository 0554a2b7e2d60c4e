// Shared fixtures for the alarm centre tests: a temp database, a ManualClock app, signed device requests, logged-in operators.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../protocol/src/clock.js';
import { buildApp } from '../../alarm-center/src/app.js';
import type { AlarmConfig } from '../../alarm-center/src/config.js';
import { addOperator, registerDevice } from '../../alarm-center/src/server.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import type { Role } from '../../alarm-center/src/store/accounts.js';

export const KEY = '11'.repeat(32);
export const silent = pino({ level: 'silent' });

export type Fixture = { dir: string; dbPath: string; clock: ManualClock; app: FastifyInstance; secrets: Record<string, string>; cleanup(): Promise<void> };

export async function makeFixture(config: Partial<AlarmConfig> = {}, devices = ['dev-a', 'dev-b']): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-ac-'));
  const dbPath = join(dir, 'ac.db');
  const clock = new ManualClock();
  const secrets: Record<string, string> = {};
  for (const d of devices) secrets[d] = registerDevice(dbPath, d, { clock, secretKeyHex: KEY });
  for (const [u, r] of [['olga', 'operator'], ['otto', 'operator'], ['sue', 'supervisor'], ['ada', 'admin']] as const) addOperator(dbPath, u, r as Role, `${u}-password`, { clock });
  const f: Fixture = {
    dir, dbPath, clock, secrets,
    app: await buildApp({ dbPath, clock, logger: silent, config: { secretKeyHex: KEY, ...config } }),
    async cleanup() {
      await f.app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return f;
}

export async function reopen(f: Fixture, config: Partial<AlarmConfig> = {}): Promise<void> {
  await f.app.close();
  f.app = await buildApp({ dbPath: f.dbPath, clock: f.clock, logger: silent, config: { secretKeyHex: KEY, ...config } });
}

let seq = 0;
export function event(type: string, extra: Record<string, unknown> = {}) {
  seq++;
  return { eventId: `ev-${seq}-${Math.random().toString(36).slice(2, 8)}`, seq, type, occurredAtMs: 1_767_596_400_000, payload: {}, ...extra };
}

/** A device request signed as `as` (default: the device in the path) at the clock's time, or at `atMs`. */
export function signed(f: Fixture, deviceId: string, path: string, body: unknown, opts: { as?: string; atMs?: number; secret?: string } = {}) {
  const raw = JSON.stringify(body);
  const as = opts.as ?? deviceId;
  const url = `/v1/devices/${deviceId}${path}`;
  const headers = signedHeaders(as, opts.secret ?? f.secrets[as] ?? 'x', 'POST', url, opts.atMs ?? f.clock.now(), raw);
  return { method: 'POST' as const, url, payload: raw, headers: { ...headers, 'content-type': 'application/json' } };
}

export async function loginAs(f: Fixture, username: string): Promise<string> {
  const r = await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username, password: `${username}-password` } });
  if (r.statusCode !== 200) throw new Error(`login ${username}: ${r.statusCode} ${r.body}`);
  const c = r.cookies.find((x) => x.name === 'dosis_session');
  return `dosis_session=${c!.value}`;
}

export function count(f: Fixture, sql: string, ...args: unknown[]): number {
  return (f.app.db.prepare(sql).get(...args) as { n: number }).n;
}

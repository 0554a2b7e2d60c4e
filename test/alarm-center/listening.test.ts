// The alarm centre on a real port (127.0.0.1:0) with fetch: signed posts, login cookie, docs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { addOperator, registerDevice, startAlarmCenter, type RunningAlarmCenter } from '../../alarm-center/src/server.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import { silent } from './helpers.js';

let dir: string;
let centre: RunningAlarmCenter;
let secret: string;
const clock = new SystemClock();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-acl-'));
  const dbPath = join(dir, 'ac.db');
  secret = registerDevice(dbPath, 'r-1');
  addOperator(dbPath, 'olga', 'operator', 'olga-password');
  centre = await startAlarmCenter({ port: 0, host: '127.0.0.1', dbPath, clock, logger: silent });
});
afterAll(async () => {
  await centre?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function post(path: string, body: unknown, sign = true) {
  const raw = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(sign ? signedHeaders('r-1', secret, 'POST', path, clock.now(), raw) : {}) };
  return fetch(centre.url + path, { method: 'POST', body: raw, headers });
}

describe('listening centre', () => {
  it('stores a signed event, answers a duplicate, refuses unsigned', async () => {
    const ev = { eventId: 'e-1', seq: 1, type: 'missed_dose', occurredAtMs: clock.now(), doseId: 'd-1', payload: {} };
    expect((await post('/v1/devices/r-1/events', ev)).status).toBe(201);
    const dup = await post('/v1/devices/r-1/events', ev);
    expect(dup.status).toBe(200);
    expect(((await dup.json()) as { status: string }).status).toBe('duplicate');
    expect((await post('/v1/devices/r-1/events', { ...ev, eventId: 'e-2' }, false)).status).toBe(401);
  });

  it('logs an operator in with an httpOnly cookie and lists the alert', async () => {
    const r = await fetch(`${centre.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'olga', password: 'olga-password' }) });
    expect(r.status).toBe(200);
    const setCookie = r.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/i);
    const list = await fetch(`${centre.url}/v1/alerts`, { headers: { cookie: setCookie.split(';')[0]! } });
    const body = (await list.json()) as { alerts: { doseId: string }[] };
    expect(body.alerts.map((a) => a.doseId)).toEqual(['d-1']);
  });

  it('serves the OpenAPI document and hides internals on unknown routes', async () => {
    const doc = (await (await fetch(`${centre.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/v1/devices/{deviceId}/events');
    const nf = await fetch(`${centre.url}/nope`);
    expect(nf.status).toBe(404);
  });
});

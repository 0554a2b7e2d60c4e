// The alarm bench's reference route (signed events checked, not stored) must check as the centre does, or the share
// it gives the database would be wrong: a good signature passes, a forged one, a stale one and a bad body do not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../protocol/src/clock.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import { unstoredRoute } from './alarm-bench.js';

const path = '/v1/devices/bench-1/events';
const secret = 'a-device-secret';
const clock = new ManualClock(1_800_000_000_000);
let app: FastifyInstance;
beforeAll(async () => {
  app = unstoredRoute(path, secret, clock);
  await app.ready();
});
afterAll(() => app.close());

const post = (body: string, headers: Record<string, string>) => app.inject({ method: 'POST', url: path, payload: body, headers: { 'content-type': 'application/json', ...headers } });
const event = JSON.stringify({ eventId: 'e-1', seq: 1, type: 'missed_dose', occurredAtMs: 1, doseId: 'd-1', payload: { slot: 3 } });

describe('alarm bench: the signed-but-not-stored reference route', () => {
  it('answers a signed event as the centre would', async () => {
    const res = await post(event, signedHeaders('bench-1', secret, 'POST', path, clock.now(), event));
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ eventId: 'e-1', status: 'stored', alertId: null });
  });

  it('refuses a forged signature, a stale one and a body outside the contract', async () => {
    expect((await post(event, signedHeaders('bench-1', 'another-secret', 'POST', path, clock.now(), event))).statusCode).toBe(401);
    expect((await post(event, signedHeaders('bench-1', secret, 'POST', path, clock.now() - 3_600_000, event))).statusCode).toBe(401);
    const bad = JSON.stringify({ eventId: 'e-2', seq: 'two', type: 'missed_dose', occurredAtMs: 1, payload: {} });
    expect((await post(bad, signedHeaders('bench-1', secret, 'POST', path, clock.now(), bad))).statusCode).toBe(400);
  });
});

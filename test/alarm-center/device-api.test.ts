// Device API through app.inject(): signatures, replays, duplicates, conflicts, schema and size limits, folding.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { count, event, makeFixture, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

describe('device authentication', () => {
  it('accepts a correctly signed event and stores it once', async () => {
    const r = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'd1' })));
    expect(r.statusCode).toBe(201);
    expect(r.json().status).toBe('stored');
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(1);
  });

  it('refuses a request without signature headers', async () => {
    const r = await f.app.inject({ method: 'POST', url: '/v1/devices/dev-a/events', payload: event('missed_dose') });
    expect(r.statusCode).toBe(401);
    expect(r.json().code).toBe('DOSIS_ERR_UNAUTHORIZED');
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });

  it('refuses a wrong secret and a device posting as another', async () => {
    const bad = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose'), { secret: 'not-the-secret' }));
    expect(bad.statusCode).toBe(401);
    const other = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose'), { as: 'dev-b' }));
    expect(other.statusCode).toBe(403);
    expect(other.json().message).toMatch(/only post as itself/);
    const unknown = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose'), { as: 'nobody', secret: 'x' }));
    expect(unknown.statusCode).toBe(401);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });

  it('refuses a timestamp outside five minutes either way', async () => {
    for (const skew of [-5 * 60_000 - 1, 5 * 60_000 + 1]) {
      const r = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose'), { atMs: f.clock.now() + skew }));
      expect(r.statusCode).toBe(401);
      expect(r.json().message).toMatch(/window/);
    }
    const edge = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose'), { atMs: f.clock.now() - 4 * 60_000 }));
    expect(edge.statusCode).toBe(201);
  });

  it('refuses a replayed request even within the window', async () => {
    const req = signed(f, 'dev-a', '/events', event('missed_dose'));
    expect((await f.app.inject(req)).statusCode).toBe(201);
    f.clock.advance(1000);
    const again = await f.app.inject(req);
    expect(again.statusCode).toBe(401);
    expect(again.json().message).toMatch(/replay/);
  });

  it('refuses a body changed after signing', async () => {
    const req = signed(f, 'dev-a', '/events', event('missed_dose'));
    const r = await f.app.inject({ ...req, payload: req.payload.replace('missed_dose', 'low_supply') });
    expect(r.statusCode).toBe(401);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });
});

describe('deduplication and conflicts', () => {
  it('answers the same event again as a duplicate and stores it once', async () => {
    const ev = event('missed_dose', { doseId: 'd1' });
    expect((await f.app.inject(signed(f, 'dev-a', '/events', ev))).statusCode).toBe(201);
    f.clock.advance(10);
    const again = await f.app.inject(signed(f, 'dev-a', '/events', ev));
    expect(again.statusCode).toBe(200);
    expect(again.json().status).toBe('duplicate');
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(1);
    expect(count(f, 'SELECT report_count n FROM alerts')).toBe(1);
  });

  it('answers the same id with another body with 409 and keeps the first', async () => {
    const ev = event('missed_dose', { doseId: 'd1' });
    await f.app.inject(signed(f, 'dev-a', '/events', ev));
    f.clock.advance(10);
    const r = await f.app.inject(signed(f, 'dev-a', '/events', { ...ev, payload: { slot: 3 } }));
    expect(r.statusCode).toBe(409);
    expect(r.json().code).toBe('DOSIS_ERR_CONFLICT');
    expect(count(f, `SELECT count(*) n FROM events WHERE payload_json = '{}'`)).toBe(1);
  });

  it('takes a batch oldest first and reports each item', async () => {
    const a = event('dose_overdue', { doseId: 'd2' });
    await f.app.inject(signed(f, 'dev-a', '/events', a));
    f.clock.advance(10);
    const b = event('missed_dose', { doseId: 'd2' });
    const c = event('low_supply', { payload: { slotsLeft: 2 } });
    const r = await f.app.inject(signed(f, 'dev-a', '/events/batch', { events: [a, b, c, { ...a, payload: { x: 1 } }] }));
    expect(r.statusCode).toBe(200);
    expect(r.json().results.map((x: { status: string }) => x.status)).toEqual(['duplicate', 'stored', 'stored', 'conflict']);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(3);
  });

  it('keeps event ids per device: two devices may use the same id', async () => {
    const ev = event('missed_dose', { doseId: 'd1' });
    expect((await f.app.inject(signed(f, 'dev-a', '/events', ev))).statusCode).toBe(201);
    expect((await f.app.inject(signed(f, 'dev-b', '/events', ev))).statusCode).toBe(201);
  });
});

describe('schema and size', () => {
  it.each([
    ['unknown type', { type: 'dose_eaten' }],
    ['extra field', { extra: 1 }],
    ['overlong id', { eventId: 'x'.repeat(65) }],
    ['negative seq', { seq: -1 }],
  ])('rejects %s with a clear 400 and stores nothing', async (_name, patch) => {
    const r = await f.app.inject(signed(f, 'dev-a', '/events', { ...event('missed_dose'), ...patch }));
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('DOSIS_ERR_VALIDATION');
    expect(r.json().message.length).toBeGreaterThan(5);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });

  it('rejects an oversized body with 413 and stores nothing', async () => {
    const big = { events: Array.from({ length: 100 }, () => event('low_supply', { payload: { pad: 'p'.repeat(190), a: 'p'.repeat(190), b: 'p'.repeat(190), c: 'p'.repeat(190) } })) };
    const r = await f.app.inject(signed(f, 'dev-a', '/events/batch', big));
    expect(r.statusCode).toBe(413);
    expect(r.json().code).toBe('DOSIS_ERR_TOO_LARGE');
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });

  it('rejects malformed JSON with 400', async () => {
    const req = signed(f, 'dev-a', '/events', 'x');
    const r = await f.app.inject({ ...req, payload: '{"eventId":' });
    expect(r.statusCode).toBe(400);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
  });
});

describe('folding and cancelling', () => {
  it('folds reports about one dose into one alert and raises its urgency', async () => {
    await f.app.inject(signed(f, 'dev-a', '/events', event('dose_overdue', { doseId: 'd9' })));
    f.clock.advance(10);
    await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'd9' })));
    expect(count(f, 'SELECT count(*) n FROM alerts')).toBe(1);
    const a = f.app.db.prepare('SELECT type, report_count FROM alerts').get() as { type: string; report_count: number };
    expect(a).toEqual({ type: 'missed_dose', report_count: 2 });
  });

  it('cancels an unclaimed alert when the dose is taken late', async () => {
    await f.app.inject(signed(f, 'dev-a', '/events', event('dose_overdue', { doseId: 'd5' })));
    f.clock.advance(10);
    await f.app.inject(signed(f, 'dev-a', '/events', event('dose_taken_late', { doseId: 'd5' })));
    expect(f.app.db.prepare('SELECT state, outcome FROM alerts').get()).toEqual({ state: 'cancelled', outcome: 'dose_taken_late' });
  });

  it('records seq so gaps show in device health', async () => {
    await f.app.inject(signed(f, 'dev-a', '/events', { ...event('low_supply'), seq: 1 }));
    f.clock.advance(10);
    await f.app.inject(signed(f, 'dev-a', '/events', { ...event('low_supply'), seq: 4 }));
    const d = f.app.db.prepare(`SELECT max_seq FROM devices WHERE id = 'dev-a'`).get() as { max_seq: number };
    expect(d.max_seq).toBe(4);
    expect(count(f, `SELECT count(DISTINCT seq) n FROM events WHERE device_id = 'dev-a'`)).toBe(2);
  });

  it('answers heartbeats with the interval', async () => {
    const r = await f.app.inject(signed(f, 'dev-a', '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 3, link: 'ok', mcu: 'ok', firmwareVersion: '1.0.0' }));
    expect(r.statusCode).toBe(200);
    expect(r.json().intervalMs).toBe(300_000);
  });
});

describe('rate limits', () => {
  it('limits a device across addresses and an address across requests', async () => {
    const g = await makeFixture({ rateLimitPerMinute: 3 });
    try {
      for (let i = 0; i < 3; i++) {
        g.clock.advance(1);
        expect((await g.app.inject({ ...signed(g, 'dev-a', '/events', event('low_supply')), remoteAddress: `10.0.0.${i + 1}` })).statusCode).toBe(201);
      }
      g.clock.advance(1);
      const dev = await g.app.inject({ ...signed(g, 'dev-a', '/events', event('low_supply')), remoteAddress: '10.0.0.9' });
      expect(dev.statusCode).toBe(429);
      expect(dev.json().message).toMatch(/this device/);
      for (let i = 0; i < 3; i++) await g.app.inject({ method: 'GET', url: '/v1/alerts', remoteAddress: '10.0.1.1' });
      const ip = await g.app.inject({ method: 'GET', url: '/v1/alerts', remoteAddress: '10.0.1.1' });
      expect(ip.statusCode).toBe(429);
      expect(ip.json().code).toBe('DOSIS_ERR_RATE_LIMIT');
    } finally {
      await g.cleanup();
    }
  });
});

describe('headers', () => {
  it('spares robots the browser-protection headers the page and operator API carry', async () => {
    const dev = await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')));
    expect(dev.statusCode).toBe(201);
    expect(dev.headers['content-security-policy']).toBeUndefined();
    const op = await f.app.inject({ method: 'GET', url: '/v1/alerts' });
    expect(op.headers['content-security-policy']).toMatch(/default-src 'self'/);
  });
});

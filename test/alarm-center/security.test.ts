// What an attacker tried, through app.inject(): coerced types, unbounded payload keys, impossible daily figures,
// password guessing, missing headers, cookies without Secure, spoofed proxy headers, endless silences.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_AFTER_FAILURES, lockMs } from '../../alarm-center/src/store/accounts.js';
import { count, event, loginAs, makeFixture, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const DAY = 24 * 3600_000;
const heartbeat = (f: Fixture, report?: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  signed(f, 'dev-a', '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1.0', ...(report ? { report } : {}), ...extra });
const today = (f: Fixture) => new Date(f.clock.now()).toISOString().slice(0, 10);
const goodReport = (f: Fixture) => ({ day: today(f), dosings: 4, pills: 12, correct: 3, green: 1, yellow: 0, missed: 1, taken: 3 });

describe('strict types on the device API', () => {
  it('refuses a number sent as a string, in an event, a batch and a heartbeat, and stores nothing', async () => {
    for (const req of [
      signed(f, 'dev-a', '/events', event('missed_dose', { seq: '5' })),
      signed(f, 'dev-a', '/events', event('missed_dose', { occurredAtMs: String(f.clock.now()) })),
      signed(f, 'dev-a', '/events/batch', { events: [event('missed_dose', { seq: '5' })] }),
      heartbeat(f, undefined, { outboxDepth: '0' }),
      heartbeat(f, { ...goodReport(f), dosings: '4' }),
    ]) {
      f.clock.advance(1);
      const r = await f.app.inject(req);
      expect(r.statusCode, req.payload).toBe(400);
      expect(r.json().code).toBe('DOSIS_ERR_VALIDATION');
    }
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
    expect(count(f, 'SELECT count(*) n FROM devices WHERE last_heartbeat_at_ms IS NOT NULL')).toBe(0);
  });

  it('bounds payload keys and values: a 20,000-character key, an odd key, 21 keys and a long value are refused', async () => {
    for (const payload of [
      { ['k'.repeat(20_000)]: 1 },
      { ['k'.repeat(41)]: 1 },
      { 'bad key': 1 },
      { '__proto__x': 1, 'ok': 2 },
      Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])),
      { note: 'x'.repeat(201) },
      { nested: { a: 1 } },
    ]) {
      f.clock.advance(1);
      const r = await f.app.inject(signed(f, 'dev-a', '/events', event('device_fault', { payload })));
      expect(r.statusCode).toBe(400);
    }
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(0);
    const ok = await f.app.inject(signed(f, 'dev-a', '/events', event('device_fault', { payload: { reason: 'jam', countedPills: 3, ['k'.repeat(40)]: true } })));
    expect(ok.statusCode).toBe(201);
  });
});

describe('strict types on the operator API', () => {
  it('refuses a version sent as a string and a username sent as a number', async () => {
    const a = (await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'x' })))).json().alertId as number;
    const olga = await loginAs(f, 'olga');
    const r = await f.app.inject({ method: 'POST', url: `/v1/alerts/${a}/claim`, headers: { cookie: olga }, payload: { version: '1' } });
    expect(r.statusCode).toBe(400);
    expect(count(f, `SELECT count(*) n FROM alerts WHERE state = 'open'`)).toBe(1);
    expect((await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 123, password: 'olga-password' } })).statusCode).toBe(400);
    expect((await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'O'.repeat(41), password: 'x' } })).statusCode).toBe(400);
  });

  it('bounds contact labels like payload keys', async () => {
    const ada = await loginAs(f, 'ada');
    const put = (payload: Record<string, unknown>) => f.app.inject({ method: 'PUT', url: '/v1/devices/dev-a/contact', headers: { cookie: ada }, payload });
    expect((await put({ ['k'.repeat(20_000)]: 'x' })).statusCode).toBe(400);
    expect((await put({ '<img src=x>': 'x' })).statusCode).toBe(400);
    expect((await put({ telefon: 5 })).statusCode).toBe(400);
    expect((await put({ telefon: '+45 12 34 56 78', 'pårørende': 'Ib' })).statusCode).toBe(204);
  });
});

describe('daily figures', () => {
  it('refuses counts that do not add up, a day that does not exist and a day in the future', async () => {
    const base = goodReport(f);
    for (const [report, why] of [
      [{ ...base, green: 500, dosings: 1 }, /exceed dosings/],
      [{ ...base, correct: 4, yellow: 1 }, /exceed dosings/],
      [{ ...base, day: '2027-13-45' }, /not a calendar date/],
      [{ ...base, day: '2026-02-30' }, /not a calendar date/],
      [{ ...base, day: new Date(f.clock.now() + 2 * DAY).toISOString().slice(0, 10) }, /future/],
    ] as const) {
      f.clock.advance(1);
      const r = await f.app.inject(heartbeat(f, report));
      expect(r.statusCode).toBe(422);
      expect(r.json().message).toMatch(why);
    }
    expect(count(f, 'SELECT count(*) n FROM daily_reports')).toBe(0);
    f.clock.advance(1);
    expect((await f.app.inject(heartbeat(f, base))).statusCode).toBe(200);
    // A robot east of UTC may already be on tomorrow.
    f.clock.advance(1);
    expect((await f.app.inject(heartbeat(f, { ...base, day: new Date(f.clock.now() + 12 * 3600_000).toISOString().slice(0, 10) }))).statusCode).toBe(200);
  });
});

describe('lock-out', () => {
  it('locks an account after repeated failures with growing delays, refuses even the right password meanwhile, and audits it', async () => {
    const attempt = (password: string) => f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'olga', password } });
    for (let i = 1; i < LOCK_AFTER_FAILURES; i++) expect((await attempt('wrong-password')).statusCode).toBe(401);
    const locking = await attempt('wrong-password');
    expect(locking.statusCode).toBe(429);
    expect(locking.json().code).toBe('DOSIS_ERR_LOCKED');
    expect(Number(locking.headers['retry-after'])).toBe(lockMs(LOCK_AFTER_FAILURES) / 1000);
    // 300 more guesses while locked: none is checked, none counts, and the right password is refused too.
    for (let i = 0; i < 300; i++) expect((await attempt('wrong-password')).statusCode).toBe(429);
    expect((await attempt('olga-password')).statusCode).toBe(429);
    f.clock.advance(lockMs(LOCK_AFTER_FAILURES));
    expect((await attempt('wrong-again')).statusCode).toBe(429);
    expect(lockMs(LOCK_AFTER_FAILURES + 1)).toBe(2 * lockMs(LOCK_AFTER_FAILURES));
    f.clock.advance(lockMs(LOCK_AFTER_FAILURES + 1));
    expect((await attempt('olga-password')).statusCode).toBe(200);
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'login.failed'`)).toBe(LOCK_AFTER_FAILURES - 1);
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'login.locked'`)).toBe(2);
    // A good login clears the count.
    expect((await attempt('wrong-password')).statusCode).toBe(401);
  });

  it('treats an unknown username like a known one, and checks one password at a time per username', async () => {
    for (let i = 1; i < LOCK_AFTER_FAILURES; i++) expect((await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'nobody', password: 'x' } })).statusCode).toBe(401);
    expect((await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'nobody', password: 'x' } })).statusCode).toBe(429);
    const burst = await Promise.all(Array.from({ length: 20 }, () => f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'otto', password: 'wrong' } })));
    const codes = burst.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(LOCK_AFTER_FAILURES);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
  });
});

describe('password spraying', () => {
  it('locks a client address that fails on many usernames, audits it, and leaves other addresses alone', async () => {
    const g = await makeFixture({ loginFailuresPerAddress: 3 });
    try {
      const attempt = (username: string, password: string, remoteAddress: string) =>
        g.app.inject({ method: 'POST', url: '/v1/session', remoteAddress, payload: { username, password } });
      expect((await attempt('olga', 'Summer2026!', '10.1.1.1')).statusCode).toBe(401);
      expect((await attempt('otto', 'Summer2026!', '10.1.1.1')).statusCode).toBe(401);
      const third = await attempt('sue', 'Summer2026!', '10.1.1.1');
      expect(third.statusCode).toBe(429);
      expect((await attempt('ada', 'ada-password', '10.1.1.1')).statusCode).toBe(429);
      expect((await attempt('ada', 'ada-password', '10.1.1.2')).statusCode).toBe(200);
      expect(count(g, `SELECT count(*) n FROM audit WHERE action = 'login.address_locked'`)).toBe(1);
      g.clock.advance(lockMs(3, 3));
      expect((await attempt('ada', 'ada-password', '10.1.1.1')).statusCode).toBe(200);
      // The good login cleared the address's count.
      expect((await attempt('olga', 'wrong-again', '10.1.1.1')).statusCode).toBe(401);
    } finally {
      await g.cleanup();
    }
  });
});

describe('headers, cookies and the proxy', () => {
  it('sends a content security policy, no framing and nosniff on the page and the API', async () => {
    for (const url of ['/', '/v1/alerts', '/app.js']) {
      const r = await f.app.inject({ method: 'GET', url });
      expect(r.headers['content-security-policy'], url).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
      expect(r.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['x-frame-options']).toBe('DENY');
    }
    const a = (await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'c' })))).json().alertId as number;
    const olga = await loginAs(f, 'olga');
    await f.app.inject({ method: 'POST', url: `/v1/alerts/${a}/claim`, headers: { cookie: olga }, payload: { version: 1 } });
    const contact = await f.app.inject({ method: 'GET', url: `/v1/alerts/${a}/contact`, headers: { cookie: olga } });
    expect(contact.statusCode).toBe(200);
    expect(contact.headers['cache-control']).toBe('no-store');
    const docs = await f.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(docs.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
  });

  it('marks the session cookie Secure over TLS (behind a trusted proxy), and believes no proxy header otherwise', async () => {
    const login = (g: Fixture, headers: Record<string, string>) => g.app.inject({ method: 'POST', url: '/v1/session', headers, payload: { username: 'olga', password: 'olga-password' } });
    const plain = await login(f, { 'x-forwarded-proto': 'https' });
    expect(plain.headers['set-cookie']).not.toMatch(/Secure/);
    expect(plain.headers['set-cookie']).toMatch(/HttpOnly/);
    expect(plain.headers['set-cookie']).toMatch(/SameSite=Strict/);
    const g = await makeFixture({ trustProxy: '127.0.0.1' });
    try {
      const tls = await login(g, { 'x-forwarded-proto': 'https' });
      expect(tls.headers['set-cookie']).toMatch(/; Secure/);
    } finally {
      await g.cleanup();
    }
  });

  it('behind a trusted proxy limits each client address, not the proxy, and a fleet behind one address is limited per device', async () => {
    const g = await makeFixture({ trustProxy: '10.9.9.9', rateLimitPerMinute: 3 }, ['dev-a', 'dev-b', 'dev-c', 'dev-d']);
    try {
      const get = (client: string, remoteAddress = '10.9.9.9') => g.app.inject({ method: 'GET', url: '/v1/alerts', remoteAddress, headers: { 'x-forwarded-for': client } });
      for (let i = 0; i < 3; i++) await get('192.0.2.1');
      expect((await get('192.0.2.1')).statusCode).toBe(429);
      expect((await get('192.0.2.2')).statusCode).toBe(401);
      // An untrusted sender cannot pick its address with the header.
      for (let i = 0; i < 3; i++) await get(`192.0.2.${10 + i}`, '10.0.0.5');
      expect((await get('192.0.2.99', '10.0.0.5')).statusCode).toBe(429);
      // Four robots, three requests each, all from the one proxy address: 12 requests, a limit of 3 per device.
      for (const d of ['dev-a', 'dev-b', 'dev-c', 'dev-d']) {
        for (let i = 0; i < 3; i++) {
          g.clock.advance(1);
          expect((await g.app.inject({ ...signed(g, d, '/events', event('low_supply')), remoteAddress: '10.9.9.9' })).statusCode).toBeLessThan(300);
        }
      }
      g.clock.advance(1);
      expect((await g.app.inject({ ...signed(g, 'dev-a', '/events', event('low_supply')), remoteAddress: '10.9.9.9' })).statusCode).toBe(429);
    } finally {
      await g.cleanup();
    }
  });

  it('turns the rate limit off with 0', async () => {
    const g = await makeFixture({ rateLimitPerMinute: 0 });
    try {
      for (let i = 0; i < 50; i++) expect((await g.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.0.0.1' })).statusCode).toBe(200);
      for (let i = 0; i < 20; i++) {
        g.clock.advance(1);
        expect((await g.app.inject(signed(g, 'dev-a', '/events', event('low_supply')))).statusCode).toBeLessThan(300);
      }
    } finally {
      await g.cleanup();
    }
  });
});

describe('silences', () => {
  it('must end in the future and within the configured number of days', async () => {
    const sue = await loginAs(f, 'sue');
    const add = (endsAtMs: number) => f.app.inject({ method: 'POST', url: '/v1/silences', headers: { cookie: sue }, payload: { deviceId: 'dev-a', reason: 'hospital', endsAtMs } });
    expect((await add(253402300799000)).statusCode).toBe(400); // 9999-12-31
    expect((await add(0)).statusCode).toBe(400); // 1970
    expect((await add(f.clock.now())).statusCode).toBe(400);
    expect((await add(f.clock.now() + 91 * DAY)).statusCode).toBe(400);
    expect((await add(f.clock.now() + 90 * DAY)).statusCode).toBe(201);
    expect(count(f, 'SELECT count(*) n FROM silences')).toBe(1);
    const g = await makeFixture({ maxSilenceDays: 7 });
    try {
      const s = await loginAs(g, 'sue');
      const r = await g.app.inject({ method: 'POST', url: '/v1/silences', headers: { cookie: s }, payload: { deviceId: 'dev-a', reason: 'away', endsAtMs: g.clock.now() + 8 * DAY } });
      expect(r.statusCode).toBe(400);
      expect(r.json().message).toMatch(/7 days/);
    } finally {
      await g.cleanup();
    }
  });
});

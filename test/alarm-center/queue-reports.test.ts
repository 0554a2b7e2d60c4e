// Operator API: the paged queue with a true total, priorities that rise when unclaimed, adherence per month, robot and
// district with CSV, the page's messages, the live stream on a real port, and settings checked before start.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../alarm-center/src/cli.js';
import { checkConfig, ConfigError, readConfigFile } from '../../alarm-center/src/config.js';
import { event, loginAs, makeFixture, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

type Page = { total: number; offset: number; counts: Record<string, number>; unclaimed: Record<string, number>; alerts: { id: number; type: string; priority: string; doseId: string | null }[] };
const queue = async (cookie: string, query = ''): Promise<Page> => (await f.app.inject({ method: 'GET', url: `/v1/alerts${query}`, headers: { cookie } })).json();

describe('queue', () => {
  it('pages with a true total, filters, and counts live alerts per priority', async () => {
    const batch = Array.from({ length: 100 }, (_, i) => event('missed_dose', { doseId: `d${i}` }));
    expect((await f.app.inject(signed(f, 'dev-a', '/events/batch', { events: batch }))).statusCode).toBe(200);
    f.clock.advance(1);
    await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')));
    f.clock.advance(1);
    await f.app.inject(signed(f, 'dev-b', '/events', event('device_fault')));
    const olga = await loginAs(f, 'olga');
    const first = await queue(olga, '?limit=30');
    expect(first).toMatchObject({ total: 102, offset: 0, counts: { high: 100, medium: 1, low: 1 }, unclaimed: { high: 100, medium: 1, low: 1 } });
    expect(first.alerts).toHaveLength(30);
    expect(first.alerts.every((a) => a.priority === 'high')).toBe(true);
    const seen = new Set<number>();
    for (let offset = 0; offset < 102; offset += 30) for (const a of (await queue(olga, `?limit=30&offset=${offset}`)).alerts) seen.add(a.id);
    expect(seen.size).toBe(102);
    const last = await queue(olga, '?limit=30&offset=90');
    expect(last.alerts.map((a) => a.priority).slice(-2)).toEqual(['medium', 'low']);
    expect((await queue(olga, '?priority=low')).total).toBe(1);
    expect((await queue(olga, '?type=device_fault')).alerts[0]!.type).toBe('device_fault');
    expect((await queue(olga, '?deviceId=dev-b')).total).toBe(1);
    expect((await f.app.inject({ method: 'GET', url: '/v1/alerts?limit=501', headers: { cookie: olga } })).statusCode).toBe(400);
    expect((await f.app.inject({ method: 'GET', url: '/v1/alerts?sort=x', headers: { cookie: olga } })).statusCode).toBe(400);
  });

  it('keeps the alerts an operator holds at the top of that operator\'s first page, whatever arrives after', async () => {
    const low = (await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).json().alertId as number;
    const olga = await loginAs(f, 'olga');
    await f.app.inject({ method: 'POST', url: `/v1/alerts/${low}/claim`, headers: { cookie: olga }, payload: { version: 1 } });
    f.clock.advance(1);
    const batch = Array.from({ length: 60 }, (_, i) => event('missed_dose', { doseId: `late-${i}` }));
    expect((await f.app.inject(signed(f, 'dev-b', '/events/batch', { events: batch }))).statusCode).toBe(200);
    expect((await queue(olga, '?limit=50')).alerts[0]).toMatchObject({ id: low, priority: 'low' });
    const otto = await loginAs(f, 'otto');
    expect((await queue(otto, '?limit=50')).alerts.map((a) => a.id)).not.toContain(low);
  });

  it('raises an alert left unclaimed one priority, and puts it back when claimed', async () => {
    const low = (await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).json().alertId as number;
    const olga = await loginAs(f, 'olga');
    expect((await queue(olga)).alerts[0]).toMatchObject({ id: low, priority: 'low' });
    f.clock.advance(180_000);
    expect((await queue(olga)).alerts[0]).toMatchObject({ id: low, priority: 'medium' });
    expect((await queue(olga)).counts).toEqual({ high: 0, medium: 1, low: 0 });
    const sue = await loginAs(f, 'sue');
    f.app.runScheduler();
    const v = (await queue(sue)).alerts[0] as unknown as { version: number };
    await f.app.inject({ method: 'POST', url: `/v1/alerts/${low}/claim`, headers: { cookie: sue }, payload: { version: v.version } });
    expect((await queue(olga)).alerts[0]).toMatchObject({ id: low, priority: 'low' });
    expect((await queue(olga)).unclaimed).toEqual({ high: 0, medium: 0, low: 0 });
  });
});

describe('reports', () => {
  const hb = (dev: string, day: string, r: { dosings: number; taken: number; missed: number; failed?: number }) =>
    signed(f, dev, '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1', report: { day, pills: r.dosings * 2, correct: r.dosings, green: 0, yellow: 0, ...r } });

  it('counts adherence as taken ÷ (taken + missed + failed) per month, robot and district, with CSV', async () => {
    const ada = await loginAs(f, 'ada');
    expect((await f.app.inject({ method: 'PUT', url: '/v1/devices/dev-a/district', headers: { cookie: ada }, payload: { district: 'Nørrebro' } })).statusCode).toBe(204);
    expect((await f.app.inject({ method: 'PUT', url: '/v1/devices/dev-a/district', headers: { cookie: ada }, payload: { district: '=cmd()' } })).statusCode).toBe(400);
    // Half the doses skipped: the old taken ÷ dispensed said 100 %.
    f.clock.advance(1);
    expect((await f.app.inject(hb('dev-a', '2026-01-05', { dosings: 2, taken: 2, missed: 2 }))).statusCode).toBe(200);
    f.clock.advance(1);
    expect((await f.app.inject(hb('dev-b', '2026-01-05', { dosings: 4, taken: 3, missed: 0, failed: 1 }))).statusCode).toBe(200);
    f.clock.advance(1);
    await f.app.inject(hb('dev-b', '2025-12-31', { dosings: 1, taken: 1, missed: 0 }));
    const get = async (url: string) => (await f.app.inject({ method: 'GET', url, headers: { cookie: ada } }));
    const fleet = (await get('/v1/reports/fleet')).json() as { month: string; adherence: number }[];
    expect(fleet.find((r) => r.month === '2026-01')!.adherence).toBeCloseTo(5 / 8, 10);
    expect((await get('/v1/reports/adherence')).json()).toEqual([
      { month: '2025-12', group: 'all', taken: 1, missed: 0, failed: 0, due: 1, adherence: 1 },
      { month: '2026-01', group: 'all', taken: 5, missed: 2, failed: 1, due: 8, adherence: 5 / 8 },
    ]);
    const byDevice = (await get('/v1/reports/adherence?by=device')).json() as { month: string; group: string; adherence: number }[];
    expect(byDevice.filter((r) => r.month === '2026-01')).toMatchObject([{ group: 'dev-a', adherence: 0.5 }, { group: 'dev-b', adherence: 0.75 }]);
    const byDistrict = (await get('/v1/reports/adherence?by=district')).json() as { month: string; group: string }[];
    expect(byDistrict.filter((r) => r.month === '2026-01').map((r) => r.group)).toEqual(['(none)', 'Nørrebro']);
    const csv = await get('/v1/reports/adherence?by=district&format=csv');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/attachment/);
    expect(csv.body.split('\r\n')[0]).toBe('month,district,taken,missed,failed,due,adherence');
    expect(csv.body).toContain('2026-01,Nørrebro,2,2,0,4,0.5');
    const fleetCsv = await get('/v1/reports/fleet?format=csv');
    expect(fleetCsv.body.split('\r\n')[0]).toMatch(/^month,dosings,/);
  });
});

describe('page support', () => {
  it('serves the messages in Danish by default and English on request, and the libraries from node_modules', async () => {
    const da = (await f.app.inject({ method: 'GET', url: '/v1/messages' })).json();
    expect(da.lang).toBe('da');
    expect(da.timeZone).toBe('Europe/Copenhagen');
    expect(da.messages['centre.login.heading']).toBe('Log ind');
    expect(da.messages['common.eventType.missed_dose']).toBe('Glemt medicin');
    expect((await f.app.inject({ method: 'GET', url: '/v1/messages?lang=en' })).json().messages['centre.login.heading']).toBe('Log in');
    for (const file of ['preact.js', 'hooks.js', 'htm.js', 'intl-messageformat.js']) {
      const r = await f.app.inject({ method: 'GET', url: `/vendor/${file}` });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toMatch(/javascript/);
    }
    expect((await f.app.inject({ method: 'GET', url: '/vendor/hooks.js' })).body).toContain('from "/vendor/preact.js"');
    expect((await f.app.inject({ method: 'GET', url: '/vendor/../package.json' })).statusCode).toBe(404);
  });

  it('streams a change event to a logged-in operator when an alert changes, and refuses the stream without a session', async () => {
    const url = await f.app.listen({ port: 0, host: '127.0.0.1' });
    expect((await fetch(`${url}/v1/stream`)).status).toBe(401);
    const olga = await loginAs(f, 'olga');
    const ac = new AbortController();
    const res = await fetch(`${url}/v1/stream`, { headers: { cookie: olga }, signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: RegExp) => {
      while (!until.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await read(/event: change\ndata: \d+/);
    const before = Number(/data: (\d+)/.exec(text)![1]);
    text = '';
    await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'live' })));
    f.clock.advance(500);
    await read(/event: change\ndata: \d+/);
    expect(Number(/data: (\d+)/.exec(text)![1])).toBeGreaterThan(before);
    ac.abort();
    // At most ten streams per operator: the eleventh is turned away.
    const more = new AbortController();
    const opened = await Promise.all(Array.from({ length: 10 }, () => fetch(`${url}/v1/stream`, { headers: { cookie: olga }, signal: more.signal })));
    expect(opened.every((r) => r.status === 200)).toBe(true);
    await expect.poll(async () => {
      const r = await fetch(`${url}/v1/stream`, { headers: { cookie: olga }, signal: more.signal });
      return r.status;
    }).toBe(503);
    more.abort();
    // Logging out ends the stream at the next session check.
    const sue = await loginAs(f, 'sue');
    const mine = await fetch(`${url}/v1/stream`, { headers: { cookie: sue } });
    const r2 = mine.body!.getReader();
    await r2.read();
    await f.app.inject({ method: 'DELETE', url: '/v1/session', headers: { cookie: sue } });
    f.clock.advance(5_000);
    f.clock.advance(500);
    let done = false;
    while (!done) done = (await r2.read()).done;
    expect(done).toBe(true);
  });
});

describe('settings', () => {
  it('checks each setting from a file or flags', async () => {
    expect(() => checkConfig({ rateLimitPerMinute: -1 }, 'x')).toThrow(ConfigError);
    expect(() => checkConfig({ rateLimitPerMinute: '5' }, 'x')).toThrow(/rateLimitPerMinute/);
    expect(() => checkConfig({ logLevel: 'loud' }, 'x')).toThrow(/logLevel/);
    expect(() => checkConfig({ timeZone: 'Mars/Olympus' }, 'x')).toThrow(/time zone/);
    expect(() => checkConfig({ escalateAfterMs: 30_000 }, 'x')).toThrow(/longer than renotifyMs/);
    expect(() => checkConfig({ colour: 'red' }, 'x')).toThrow(ConfigError);
    expect(checkConfig({ rateLimitPerMinute: 0, escalateAfterMs: 120_000, remindMs: 600_000, logLevel: 'warn', trustProxy: '10.0.0.0/8' }, 'x')).toMatchObject({ rateLimitPerMinute: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'dosis-cfg-'));
    try {
      writeFileSync(join(dir, 'ok.json'), JSON.stringify({ rateLimitPerMinute: 0, logLevel: 'debug' }));
      expect(readConfigFile(join(dir, 'ok.json'))).toEqual({ rateLimitPerMinute: 0, logLevel: 'debug' });
      writeFileSync(join(dir, 'bad.json'), '{ "renotifyMs": 5 }');
      const errs: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((s) => (errs.push(String(s)), true));
      const stdin = Readable.from([]);
      expect(await main(['--config', join(dir, 'bad.json'), '--db', join(dir, 'a.db')], { stdin })).toBe(2);
      expect(await main(['--rate-limit', 'lots', '--db', join(dir, 'a.db')], { stdin })).toBe(2);
      expect(await main(['--log-level', 'loud', '--db', join(dir, 'a.db')], { stdin })).toBe(2);
      expect(await main(['--escalate-after-ms', '10', '--db', join(dir, 'a.db')], { stdin })).toBe(2);
      vi.restoreAllMocks();
      expect(errs.join('')).toMatch(/renotifyMs/);
      expect(errs.join('')).toMatch(/--rate-limit/);
    } finally {
      vi.restoreAllMocks();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The screens' HTTP API with a scripted backend: pages, the citizen's view and live stream, the button, the pharmacy behind its PIN.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { PIN_LOCKOUT_MS, setPin } from '../../../firmware-host/src/screens/pin.js';
import { MANIFEST_MAX_BYTES } from '../../../firmware-host/src/screens/schemas.js';
import { BUTTON_HEADER, SESSION_COOKIE, createScreenServer } from '../../../firmware-host/src/screens/server.js';
import { FakeScreenBackend, T0 } from './fake-backend.js';

const MANIFEST = JSON.stringify({ rollId: 'R2', citizen: 'c-17', pouches: [{ position: 1, drugs: [{ name: 'Furix', strength: '40 mg', count: 1 }] }, { position: 2 }] });

describe('screen server', () => {
  let dir: string;
  let db: Database.Database;
  let clock: ManualClock;
  let backend: FakeScreenBackend;
  let app: FastifyInstance;
  let logLines: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dosis-screens-'));
    db = new Database(join(dir, 'host.db'));
    clock = new ManualClock(T0);
    backend = new FakeScreenBackend();
    logLines = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    });
    app = createScreenServer({ backend, db, clock, logger: pino({ level: 'info' }, sink) });
    setPin(db, 'anna', '4711', T0);
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(staffId = 'anna', pin = '4711'): Promise<string> {
    const res = await app.inject({ method: 'POST', url: '/api/pharmacy/login', payload: { staffId, pin } });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE);
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Strict');
    return `${SESSION_COOKIE}=${cookie!.value}`;
  }

  it('serves the pages in Danish by default, English on ?lang=en, with a CSP that allows no other origin', async () => {
    const da = await app.inject({ url: '/' });
    expect(da.statusCode).toBe(200);
    expect(da.headers['content-type']).toMatch(/text\/html/);
    expect(da.body).toContain('<html lang="da" data-default-lang="da">');
    expect(da.headers['content-security-policy']).toContain("default-src 'self'");
    expect(da.body).not.toMatch(/https?:\/\//);
    const en = await app.inject({ url: '/?lang=en' });
    expect(en.body).toContain('<html lang="en"');
    expect((await app.inject({ url: '/?lang=de' })).statusCode).toBe(400);
    const ph = await app.inject({ url: '/pharmacy' });
    expect(ph.body).toContain('id="login-form"');
    for (const f of ['citizen.js', 'citizen.css', 'messages.js', 'pharmacy.js', 'pharmacy.css', 'receipt.js', 'receipt.css']) {
      const r = await app.inject({ url: `/static/${f}` });
      expect(r.statusCode, f).toBe(200);
      expect(r.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    }
    expect((await app.inject({ url: '/static/nope.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/static/..%2Fserver.ts' })).statusCode).toBe(400);
  });

  it('puts each page\'s words in it for both languages, from its own areas of the catalogue, as data the CSP allows', async () => {
    const carried = async (url: string) => {
      const body = (await app.inject({ url })).body;
      const m = /<script id="messages" type="application\/json">([^<]*)<\/script>/.exec(body);
      expect(m, url).not.toBeNull();
      expect(body).toMatch(/<script src="\/static\/messages\.js" defer><\/script>\s*<script src="\/static\/(citizen|pharmacy)\.js" defer>/);
      return JSON.parse(m![1]!) as Record<'da' | 'en', Record<string, string>>;
    };
    const citizen = await carried('/?lang=en');
    expect(citizen.da['citizen.screen.press']).toBe('Tryk her');
    expect(citizen.en['citizen.screen.press']).toBe('Press here');
    expect(citizen.da['common.otherLanguage']).toBe('English');
    expect(Object.keys(citizen.da).some((k) => k.startsWith('pharmacy.'))).toBe(false);
    const pharmacy = await carried('/pharmacy');
    expect(pharmacy.da['pharmacy.screen.loginTitle']).toBe('Log ind');
    expect(pharmacy.en['roll.problem.wrong_citizen']).toBeDefined();
    expect(Object.keys(pharmacy.en).some((k) => k.startsWith('citizen.'))).toBe(false);
    // The same words as the endpoint that serves them on their own.
    expect((await app.inject({ url: '/api/pharmacy/messages?lang=en' })).json()).toEqual(pharmacy.en);
  });

  it('gives the citizen view and passes the on-screen button to the backend', async () => {
    backend.set({ phase: 'due', reminder: true, currentDose: { doseId: 'R1-003', intakeAtMs: T0 + 600_000, pillCount: 4 } });
    const v = await app.inject({ url: '/api/citizen' });
    expect(v.json()).toMatchObject({ phase: 'due', reminder: true, currentDose: { doseId: 'R1-003' } });
    const forged = await app.inject({ method: 'POST', url: '/api/citizen/button' });
    expect(forged.statusCode).toBe(403);
    expect(backend.presses).toBe(0);
    const press = await app.inject({ method: 'POST', url: '/api/citizen/button', headers: { [BUTTON_HEADER]: 'citizen' } });
    expect(press.statusCode).toBe(200);
    expect(backend.presses).toBe(1);
  });

  it('streams the view over SSE through inject: the current view first, then one data line per change, heartbeats on the clock', async () => {
    const res = await app.inject({ url: '/api/citizen/stream', payloadAsStream: true });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const stream = res.stream();
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setImmediate(r));
      expect(pred()).toBe(true);
    };
    await until(() => text.includes('data: '));
    expect(backend.listeners).toBe(1);
    backend.set({ phase: 'present' });
    await until(() => text.includes('"phase":"present"'));
    const datas = () => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { phase: string });
    expect(datas().map((d) => d.phase)).toEqual(['idle', 'present']);
    expect(text).not.toContain(': heartbeat');
    clock.advance(15_000);
    await until(() => text.includes(': heartbeat'));
    clock.advance(15_000);
    await until(() => text.split(': heartbeat').length === 3);
    stream.destroy();
  });

  it('streams to a real listening server and unsubscribes when the browser goes away', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const req = http.get({ host: '127.0.0.1', port, path: '/api/citizen/stream' });
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    let text = '';
    res.on('data', (c: Buffer) => (text += c.toString()));
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
      expect(pred()).toBe(true);
    };
    await until(() => text.includes('data: '));
    backend.set({ phase: 'dispensing', dispensing: { step: 'counting' } });
    await until(() => text.includes('"step":"counting"'));
    expect(backend.listeners).toBe(1);
    req.destroy();
    for (let i = 0; i < 100 && backend.listeners > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(backend.listeners).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('ends open streams when the server closes', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const req = http.get({ host: '127.0.0.1', port, path: '/api/citizen/stream' });
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    const ended = new Promise<void>((resolve) => res.on('end', resolve).on('close', resolve));
    res.resume();
    await app.close();
    await ended;
    expect(backend.listeners).toBe(0);
  });

  it('keeps every pharmacy endpoint behind a session', async () => {
    const calls: [string, string, unknown][] = [
      ['GET', '/api/pharmacy', undefined],
      ['POST', '/api/pharmacy/roll/validate', { manifest: MANIFEST }],
      ['POST', '/api/pharmacy/roll/load', { manifest: MANIFEST, confirmSha256: '0'.repeat(64) }],
      ['POST', '/api/pharmacy/roll/unload', { confirm: true }],
      ['GET', '/api/pharmacy/receipt/00000000-0000-4000-8000-000000000000', undefined],
      ['POST', '/api/pharmacy/commission', { adminId: 'root', adminPin: '9090', citizenId: 'C1' }],
      ['POST', '/api/pharmacy/decommission', { adminId: 'root', adminPin: '9090', confirm: true }],
      ['POST', '/api/pharmacy/pause', { fromMs: 0, untilMs: 1, reason: 'hospital' }],
      ['POST', '/api/pharmacy/pause/end', { confirm: true }],
      ['POST', '/api/pharmacy/travel', { count: 1, pin: '4711' }],
      ['POST', '/api/pharmacy/withdraw', { doseIds: ['R1-001'] }],
    ];
    for (const [method, url, payload] of calls) {
      const res = await app.inject({ method: method as 'GET' | 'POST', url, ...(payload ? { payload: payload as object } : {}) });
      expect(res.statusCode, url).toBe(401);
      expect(res.json()).toMatchObject({ error: 'DOSIS_ERR_NOT_LOGGED_IN' });
      const forged = await app.inject({ method: method as 'GET' | 'POST', url, cookies: { [SESSION_COOKIE]: 'forged' }, ...(payload ? { payload: payload as object } : {}) });
      expect(forged.statusCode, url).toBe(401);
    }
    expect(backend.validateCalls.length + backend.loadCalls.length + backend.unloadCalls.length).toBe(0);

    const cookie = await login();
    const view = await app.inject({ url: '/api/pharmacy', headers: { cookie } });
    expect(view.statusCode).toBe(200);
    expect(view.json()).toMatchObject({ staffId: 'anna', timeZone: 'Europe/Copenhagen', roll: { rollId: 'R1', pouchesLeft: 12 } });

    // The session lasts while used and ends after 10 idle minutes on the clock.
    clock.advance(9 * 60_000);
    expect((await app.inject({ url: '/api/pharmacy', headers: { cookie } })).statusCode).toBe(200);
    clock.advance(9 * 60_000);
    expect((await app.inject({ url: '/api/pharmacy', headers: { cookie } })).statusCode).toBe(200);
    clock.advance(10 * 60_000);
    expect((await app.inject({ url: '/api/pharmacy', headers: { cookie } })).statusCode).toBe(401);

    const again = await login();
    expect((await app.inject({ method: 'POST', url: '/api/pharmacy/logout', headers: { cookie: again }, payload: {} })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/pharmacy', headers: { cookie: again } })).statusCode).toBe(401);
  });

  it('answers 401 with attempts left, then 423 locked, and lets the right PIN in after 15 minutes', async () => {
    const attempt = (pin: string) => app.inject({ method: 'POST', url: '/api/pharmacy/login', payload: { staffId: 'anna', pin } });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await attempt('0000');
      codes.push(r.statusCode);
      expect(r.json()).toMatchObject({ error: 'DOSIS_ERR_PIN_WRONG', attemptsLeft: 4 - i });
      expect(r.cookies.find((c) => c.name === SESSION_COOKIE)).toBeUndefined();
    }
    const fifth = await attempt('0000');
    expect(fifth.statusCode).toBe(423);
    expect(fifth.json()).toMatchObject({ error: 'DOSIS_ERR_PIN_LOCKED', lockedUntilMs: T0 + PIN_LOCKOUT_MS, retryAfterMs: PIN_LOCKOUT_MS });
    expect(fifth.headers['retry-after']).toBe(String(PIN_LOCKOUT_MS / 1000));
    expect(codes).toEqual([401, 401, 401, 401]);
    expect((await attempt('4711')).statusCode).toBe(423);
    clock.advance(PIN_LOCKOUT_MS);
    expect((await attempt('4711')).statusCode).toBe(200);
    // No PIN in any log line (the timestamps and durations are numbers that may hold any four digits: leave them out).
    const logged = logLines.map((line) => {
      const { time: _time, responseTime: _rt, pid: _pid, ...rest } = JSON.parse(line) as Record<string, unknown>;
      return JSON.stringify(rest);
    }).join('\n');
    expect(logged).toContain('pharmacy login refused');
    expect(logged).not.toContain('4711');
    expect(logged).not.toContain('0000');
  });

  it('rejects malformed and over-large bodies', async () => {
    const extra = await app.inject({ method: 'POST', url: '/api/pharmacy/login', payload: { staffId: 'anna', pin: '4711', admin: true } });
    expect(extra.statusCode).toBe(400);
    const long = await app.inject({ method: 'POST', url: '/api/pharmacy/login', payload: { staffId: 'anna', pin: '1'.repeat(65) } });
    expect(long.statusCode).toBe(400);
    const cookie = await login();
    const huge = 'x'.repeat(MANIFEST_MAX_BYTES + 1);
    const tooBig = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: huge } });
    expect(tooBig.statusCode).toBe(400);
    // Under the character limit but over 2 MB of UTF-8.
    const wide = 'æ'.repeat(MANIFEST_MAX_BYTES / 2 + 1);
    const tooWide = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: wide } });
    expect(tooWide.statusCode).toBe(413);
    expect(tooWide.json()).toMatchObject({ error: 'DOSIS_ERR_MANIFEST_TOO_LARGE' });
    // A body far past the route limit is refused before parsing.
    const flood = await app.inject({ method: 'POST', url: '/api/pharmacy/login', headers: { 'content-type': 'application/json' }, payload: `{"staffId":"${'a'.repeat(2 * 1024 * 1024)}"}` });
    expect(flood.statusCode).toBe(413);
    expect(backend.validateCalls).toHaveLength(0);
    // A manifest exactly at the limit passes.
    const atLimit = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: 'x'.repeat(MANIFEST_MAX_BYTES) } });
    expect(atLimit.statusCode).toBe(200);
    expect(atLimit.json()).toMatchObject({ ok: false, problems: [{ code: 'not_json' }] });
  });

  it('loads only the manifest that was validated and confirmed, and logs no health data', async () => {
    const cookie = await login();
    const noConfirm = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/load', headers: { cookie }, payload: { manifest: MANIFEST, confirmSha256: 'a'.repeat(64) } });
    expect(noConfirm.statusCode).toBe(409);
    expect(noConfirm.json()).toMatchObject({ error: 'DOSIS_ERR_NOT_CONFIRMED' });

    const bad = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: '{not json' } });
    expect(bad.json()).toMatchObject({ ok: false, sha256: null, problems: [{ code: 'not_json', severity: 'error' }] });

    const val = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: MANIFEST } });
    expect(val.statusCode).toBe(200);
    const { sha256, pouches } = val.json() as { sha256: string; pouches: number };
    expect(pouches).toBe(2);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    // A different text under the confirmed hash is refused.
    const swapped = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/load', headers: { cookie }, payload: { manifest: MANIFEST + ' ', confirmSha256: sha256 } });
    expect(swapped.statusCode).toBe(409);
    const load = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/load', headers: { cookie }, payload: { manifest: MANIFEST, confirmSha256: sha256 } });
    expect(load.statusCode).toBe(200);
    expect(load.json()).toMatchObject({ ok: true, problems: [], returned: [] });
    expect(load.json().receiptId).toMatch(/^[0-9a-f-]{36}$/);
    expect(backend.loadCalls).toEqual([{ manifestText: MANIFEST, staffId: 'anna' }]);
    // A confirmation is good for one load.
    const replay = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/load', headers: { cookie }, payload: { manifest: MANIFEST, confirmSha256: sha256 } });
    expect(replay.statusCode).toBe(409);

    const logs = logLines.join('');
    expect(logs).toContain('roll load');
    expect(logs).not.toContain('Furix');
    expect(logs).not.toContain('c-17');
  });

  it('reports a load the backend refuses with its problems', async () => {
    const cookie = await login();
    const val = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/validate', headers: { cookie }, payload: { manifest: MANIFEST } });
    const { sha256 } = val.json() as { sha256: string };
    // The roll now loaded changed between validate and load: the backend checks again and refuses.
    backend.problems = [{ path: '/pouches/0', severity: 'error', code: 'overlap', message: 'overlaps the loaded roll' }];
    const load = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/load', headers: { cookie }, payload: { manifest: MANIFEST, confirmSha256: sha256 } });
    expect(load.statusCode).toBe(422);
    expect(load.json()).toMatchObject({ ok: false, problems: [{ code: 'overlap', path: '/pouches/0' }] });
  });

  it('unloads with a stored, printable return receipt', async () => {
    const cookie = await login();
    expect((await app.inject({ method: 'POST', url: '/api/pharmacy/roll/unload', headers: { cookie }, payload: {} })).statusCode).toBe(400);
    const un = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/unload', headers: { cookie }, payload: { confirm: true } });
    expect(un.statusCode).toBe(200);
    const body = un.json() as { receiptId: string; rollId: string; returned: unknown[] };
    expect(body.rollId).toBe('R1');
    expect(body.returned).toHaveLength(2);
    expect(backend.unloadCalls).toEqual(['anna']);

    const receipt = await app.inject({ url: `/api/pharmacy/receipt/${body.receiptId}`, headers: { cookie } });
    expect(receipt.statusCode).toBe(200);
    expect(receipt.headers['content-type']).toMatch(/text\/html/);
    // Labels as printed on the pouches, intake in Copenhagen time, totals.
    expect(receipt.body).toContain('R1-003');
    expect(receipt.body).toContain('R1-004');
    expect(receipt.body).toMatch(/08[.:]00/);
    expect(receipt.body).toMatch(/12[.:]00/);
    expect(receipt.body).toContain('2 poser');
    expect(receipt.body).toContain('>6<');
    const en = await app.inject({ url: `/api/pharmacy/receipt/${body.receiptId}?lang=en`, headers: { cookie } });
    expect(en.body).toContain('Return receipt');
    expect((await app.inject({ url: '/api/pharmacy/receipt/00000000-0000-4000-8000-000000000000', headers: { cookie } })).statusCode).toBe(404);

    // Nothing left to unload: the controller refuses.
    const again = await app.inject({ method: 'POST', url: '/api/pharmacy/roll/unload', headers: { cookie }, payload: { confirm: true } });
    expect(again.statusCode).toBe(409);
  });
});

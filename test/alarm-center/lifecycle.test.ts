// Alert lifecycle, audit and versions, contact details, escalation and supervision on a ManualClock, restart on the same file.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { count, event, loginAs, makeFixture, reopen, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

async function openAlert(doseId = 'd1'): Promise<{ id: number; version: number }> {
  const r = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId })));
  const a = f.app.db.prepare('SELECT id, version FROM alerts WHERE id = ?').get(r.json().alertId) as { id: number; version: number };
  return a;
}

const act = (cookie: string, id: number, what: string, body: object) =>
  f.app.inject({ method: 'POST', url: `/v1/alerts/${id}/${what}`, headers: { cookie }, payload: body });

describe('lifecycle', () => {
  it('open → claimed → contact → escalated → claimed by supervisor → resolved, each step audited with a version', async () => {
    const olga = await loginAs(f, 'olga');
    const sue = await loginAs(f, 'sue');
    const a = await openAlert();
    let r = await act(olga, a.id, 'claim', { version: a.version });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ state: 'claimed', claimedBy: 'olga', version: 2 });
    r = await act(olga, a.id, 'contact-attempts', { version: 2, result: 'no_answer' });
    expect(r.json()).toMatchObject({ contactAttempts: 1, version: 3 });
    r = await act(olga, a.id, 'escalate', { version: 3 });
    expect(r.json()).toMatchObject({ state: 'escalated', version: 4 });
    const otto = await loginAs(f, 'otto');
    expect((await act(otto, a.id, 'claim', { version: 4 })).statusCode).toBe(403);
    r = await act(sue, a.id, 'claim', { version: 4 });
    expect(r.json()).toMatchObject({ state: 'claimed', claimedBy: 'sue' });
    r = await act(sue, a.id, 'resolve', { version: 5, outcome: 'home_care_sent' });
    expect(r.json()).toMatchObject({ state: 'resolved', outcome: 'home_care_sent', version: 6 });
    const trail = (await f.app.inject({ method: 'GET', url: `/v1/alerts/${a.id}/audit`, headers: { cookie: olga } })).json() as { action: string; version: number }[];
    expect(trail.map((t) => t.action)).toEqual(['alert.opened', 'alert.claim', 'alert.contact', 'alert.escalate', 'alert.claim', 'alert.resolve']);
    expect(trail.map((t) => t.version)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('answers a stale version with 409 and changes nothing', async () => {
    const olga = await loginAs(f, 'olga');
    const otto = await loginAs(f, 'otto');
    const a = await openAlert();
    expect((await act(olga, a.id, 'claim', { version: 1 })).statusCode).toBe(200);
    const r = await act(otto, a.id, 'claim', { version: 1 });
    expect(r.statusCode).toBe(409);
    expect(f.app.db.prepare('SELECT claimed_by, version FROM alerts').get()).toEqual({ claimed_by: 'olga', version: 2 });
  });

  it('keeps a claimed alert when the dose is then taken late, noting it', async () => {
    const olga = await loginAs(f, 'olga');
    const a = await openAlert('late-1');
    await act(olga, a.id, 'claim', { version: 1 });
    await f.app.inject(signed(f, 'dev-a', '/events', event('dose_taken_late', { doseId: 'late-1' })));
    expect(f.app.db.prepare('SELECT state, version FROM alerts').get()).toEqual({ state: 'claimed', version: 3 });
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'alert.noted'`)).toBe(1);
  });

  it('hides internals on a 5xx', async () => {
    const olga = await loginAs(f, 'olga');
    f.app.db.close();
    const r = await f.app.inject({ method: 'GET', url: '/v1/alerts', headers: { cookie: olga } });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ statusCode: 500, code: 'DOSIS_ERR_INTERNAL', error: 'Internal Server Error', message: 'internal error' });
    expect(r.body).not.toMatch(/database|sqlite/i);
  });

  it('keeps the audit append-only', () => {
    expect(() => f.app.db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
  });

  it('needs a session and the right role', async () => {
    expect((await f.app.inject({ method: 'GET', url: '/v1/alerts' })).statusCode).toBe(401);
    const bad = await f.app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'olga', password: 'wrong-password' } });
    expect(bad.statusCode).toBe(401);
    const olga = await loginAs(f, 'olga');
    const r = await f.app.inject({ method: 'POST', url: '/v1/silences', headers: { cookie: olga }, payload: { deviceId: 'dev-a', reason: 'hospital', endsAtMs: f.clock.now() + 1000 } });
    expect(r.statusCode).toBe(403);
  });

  it('shows contact details only to the claiming operator and audits each read', async () => {
    const ada = await loginAs(f, 'ada');
    expect((await f.app.inject({ method: 'PUT', url: '/v1/devices/dev-a/contact', headers: { cookie: ada }, payload: { phone: '+45 1234 5678' } })).statusCode).toBe(204);
    const olga = await loginAs(f, 'olga');
    const otto = await loginAs(f, 'otto');
    const a = await openAlert();
    expect((await f.app.inject({ method: 'GET', url: `/v1/alerts/${a.id}/contact`, headers: { cookie: olga } })).statusCode).toBe(403);
    await act(olga, a.id, 'claim', { version: 1 });
    expect((await f.app.inject({ method: 'GET', url: `/v1/alerts/${a.id}/contact`, headers: { cookie: otto } })).statusCode).toBe(403);
    const r = await f.app.inject({ method: 'GET', url: `/v1/alerts/${a.id}/contact`, headers: { cookie: olga } });
    expect(r.json()).toEqual({ phone: '+45 1234 5678' });
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'contact.read' AND actor = 'olga'`)).toBe(1);
  });
});

describe('escalation and supervision on the injected clock', () => {
  it('re-notifies an unclaimed alert at 60 s and escalates it at 180 s', async () => {
    const a = await openAlert();
    f.clock.advance(59_000);
    expect(count(f, 'SELECT notify_count n FROM alerts WHERE id = ?', a.id)).toBe(1);
    f.clock.advance(1_000);
    expect(count(f, 'SELECT notify_count n FROM alerts WHERE id = ?', a.id)).toBe(2);
    f.clock.advance(119_000);
    expect(f.app.db.prepare('SELECT state FROM alerts').get()).toEqual({ state: 'open' });
    f.clock.advance(1_000);
    expect(f.app.db.prepare('SELECT state FROM alerts').get()).toEqual({ state: 'escalated' });
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'alert.escalated'`)).toBe(1);
  });

  it('reminds the operator of a claimed, unresolved alert', async () => {
    const olga = await loginAs(f, 'olga');
    const a = await openAlert();
    await act(olga, a.id, 'claim', { version: 1 });
    f.clock.advance(300_000);
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'alert.reminded'`)).toBe(1);
    expect(f.app.db.prepare('SELECT state FROM alerts').get()).toEqual({ state: 'claimed' });
  });

  it('opens device_silent after 3 missed heartbeats, shows late after 2, and the next heartbeat resolves it', async () => {
    const hb = () => signed(f, 'dev-a', '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1' });
    await f.app.inject(hb());
    const olga = await loginAs(f, 'olga');
    f.clock.advance(2 * 300_000 + 1000);
    const devices = (await f.app.inject({ method: 'GET', url: '/v1/devices', headers: { cookie: olga } })).json() as { deviceId: string; status: string }[];
    expect(devices.find((d) => d.deviceId === 'dev-a')!.status).toBe('late');
    expect(count(f, `SELECT count(*) n FROM alerts WHERE type = 'device_silent'`)).toBe(0);
    f.clock.advance(300_000);
    expect(count(f, `SELECT count(*) n FROM alerts WHERE type = 'device_silent' AND state = 'open'`)).toBe(1);
    expect(count(f, `SELECT count(*) n FROM alerts WHERE device_id = 'dev-b'`)).toBe(0);
    await f.app.inject(hb());
    expect(f.app.db.prepare(`SELECT state, outcome FROM alerts WHERE type = 'device_silent'`).get()).toEqual({ state: 'resolved', outcome: 'heartbeat_resumed' });
  });

  it('a silence keeps a device from alerting until it ends, and is audited', async () => {
    const sue = await loginAs(f, 'sue');
    const r = await f.app.inject({ method: 'POST', url: '/v1/silences', headers: { cookie: sue }, payload: { deviceId: 'dev-a', reason: 'hospital', endsAtMs: f.clock.now() + 60_000 } });
    expect(r.statusCode).toBe(201);
    await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'x1' })));
    expect(count(f, 'SELECT count(*) n FROM alerts')).toBe(0);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(1);
    f.clock.advance(61_000);
    await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'x2' })));
    expect(count(f, 'SELECT count(*) n FROM alerts')).toBe(1);
    expect(count(f, `SELECT count(*) n FROM audit WHERE action = 'silence.added' AND actor = 'sue'`)).toBe(1);
  });
});

describe('restart on the same database file', () => {
  it('keeps events, alerts, audit, sessions and escalation state', async () => {
    const olga = await loginAs(f, 'olga');
    const a = await openAlert('r1');
    const b = await openAlert('r2');
    await act(olga, a.id, 'claim', { version: 1 });
    f.clock.advance(100_000);
    await reopen(f);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(2);
    expect((await f.app.inject({ method: 'GET', url: '/v1/alerts', headers: { cookie: olga } })).json().alerts).toHaveLength(2);
    // The unclaimed one escalates at 180 s after opening, counted from the database, not from a lost timer.
    f.clock.advance(80_000);
    expect(f.app.db.prepare('SELECT state FROM alerts WHERE id = ?').get(b.id)).toEqual({ state: 'escalated' });
    const dup = await f.app.inject(signed(f, 'dev-a', '/events', event('missed_dose', { doseId: 'r1' })));
    expect(dup.json().alertId).toBe(a.id);
  });
});

// Browser tests in Debian's Chromium: the page opens in Danish, 1,000 alerts page through with the right total, and an
// update arriving while the operator chooses an outcome, types a note and reads a contact leaves all three untouched.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { addOperator, registerDevice } from '../../alarm-center/src/server.js';
import { ingestEvents, setContact } from '../../alarm-center/src/store/alerts.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import { KEY, silent } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ALERTS = 1000;
let dir: string;
let app: FastifyInstance;
let url: string;
let browser: Browser;
let page: Page;
let secret: string;
const clock = new SystemClock();

async function post(path: string, body: unknown) {
  const raw = JSON.stringify(body);
  return fetch(url + path, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...signedHeaders('robot-12', secret, 'POST', path, clock.now(), raw) } });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-dash-'));
  const dbPath = join(dir, 'ac.db');
  secret = registerDevice(dbPath, 'robot-12', { secretKeyHex: KEY });
  addOperator(dbPath, 'olga', 'operator', 'olga-password');
  app = await buildApp({ dbPath, clock, logger: silent, config: { secretKeyHex: KEY } });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  // 1,000 missed doses, each its own alert, stored the way the device API stores them.
  ingestEvents(app.db, 'robot-12', Array.from({ length: ALERTS }, (_, i) => ({
    eventId: `seed-${i}`, seq: i + 1, type: 'missed_dose', occurredAtMs: clock.now(), doseId: `dose-${String(i).padStart(4, '0')}`, payload: {},
  })), clock.now());
  setContact(app.db, 'robot-12', { phone: '+45 12 34 56 78', name: 'Kontaktperson' }, 'system', clock.now());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ locale: 'da-DK', timezoneId: 'UTC' });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(existsSync(CHROMIUM))('dashboard in Chromium', () => {
  it('opens in Danish under its content security policy and refuses a wrong password in Danish', async () => {
    const violations: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') violations.push(m.text()); });
    const res = await page.goto(url);
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.waitForSelector('#login');
    expect(await page.getAttribute('html', 'lang')).toBe('da');
    expect(await page.textContent('#login h2')).toBe('Log ind');
    // English is a setting, kept in the browser; back to Danish for the rest.
    await page.selectOption('#lang', 'en');
    await expect.poll(() => page.textContent('#login h2')).toBe('Log in');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.selectOption('#lang', 'da');
    await expect.poll(() => page.textContent('#login h2')).toBe('Log ind');
    await page.fill('input[name=username]', 'olga');
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('#login button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toBe('Forkert brugernavn eller adgangskode');
    await page.fill('input[name=password]', 'olga-password');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#main-view');
    expect(await page.textContent('.count.prio-high')).toBe(`Høj: ${ALERTS}`);
    expect(await page.textContent('#queue-shown')).toBe(`Viser 1–50 af ${ALERTS}`);
    expect(await page.textContent('#queue tbody tr:first-child td.type')).toBe('Glemt medicin');
    // High priority: red, flashing between 1.4 and 2.8 Hz while unclaimed, and sounding until claimed.
    const badge = page.locator('#queue tbody tr:first-child .badge');
    expect(await badge.evaluate((el) => { const cs = el.ownerDocument.defaultView!.getComputedStyle(el); return [cs.animationName, cs.animationDuration]; })).toEqual(['flash-high', '0.5s']);
    expect(await page.locator('#queue tbody tr:first-child td:first-child').evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).borderLeftColor)).toBe('rgb(200, 16, 46)');
    expect(await page.textContent('.sounding')).toBe('Høj prioritet lyder, til alarmen er taget');
    await expect.poll(() => page.getAttribute('body', 'data-last-sound')).toBe('high');
    expect(await page.getAttribute('body', 'data-high-sounding')).toBe('true');
    expect(violations.filter((v) => /Content Security Policy/i.test(v))).toEqual([]);
    // Dates: 24-hour, in the centre's time zone (Europe/Copenhagen), not the browser's (UTC here).
    const at = Math.floor(clock.now() / 1000) * 1000 - 60_000;
    const copenhagen = new Intl.DateTimeFormat('da-DK', { timeZone: 'Europe/Copenhagen', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(at);
    expect(copenhagen).toMatch(/^\d{2}\.\d{2}\.\d{4}, \d{2}\.\d{2}\.\d{2}$/);
    expect((await post('/v1/devices/robot-12/heartbeat', { sentAtMs: clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1.0' })).status).toBe(200);
    app.db.prepare('UPDATE devices SET last_heartbeat_at_ms = ? WHERE id = ?').run(at, 'robot-12');
    setContact(app.db, 'robot-12', { phone: '+45 12 34 56 78', name: 'Kontaktperson' }, 'system', clock.now()); // any audited change
    await expect.poll(() => page.textContent('#devices tbody tr td:nth-child(4)'), { timeout: 10_000 }).toBe(copenhagen);
  });

  it(`pages through ${ALERTS} alerts with the true total`, async () => {
    await expect.poll(() => page.textContent('#queue-shown')).toBe(`Viser 1–50 af ${ALERTS}`);
    const doses = new Set<string>();
    for (let p = 0; p < ALERTS / 50; p++) {
      if (p > 0) {
        const first = await page.textContent('#queue tbody tr:first-child td:nth-child(6)');
        await page.click('.pager .next');
        await expect.poll(() => page.textContent('#queue tbody tr:first-child td:nth-child(6)')).not.toBe(first);
      }
      expect(await page.textContent('#queue-shown')).toBe(`Viser ${p * 50 + 1}–${p * 50 + 50} af ${ALERTS}`);
      for (const d of await page.locator('#queue tbody tr td:nth-child(6)').allTextContents()) doses.add(d);
    }
    expect(doses.size).toBe(ALERTS);
    expect(await page.isDisabled('.pager .next')).toBe(true);
    await page.selectOption('select[name=priority]', 'high');
    await expect.poll(() => page.textContent('#queue-shown')).toBe(`Viser 1–50 af ${ALERTS}`);
    await page.selectOption('select[name=priority]', 'low');
    await expect.poll(() => page.textContent('#queue-shown')).toBe('Viser 0 af 0');
    await page.selectOption('select[name=priority]', '');
    await expect.poll(() => page.textContent('#queue-shown')).toBe(`Viser 1–50 af ${ALERTS}`);
  });

  it('keeps the chosen outcome, the typed note and the open contact through live updates', async () => {
    const row = page.locator('#queue tbody tr', { hasText: 'dose-0000' });
    await row.locator('button.claim').click();
    await expect.poll(() => row.locator('td.state').textContent()).toBe('Taget af olga');
    await row.locator('button.show-contact').click();
    await expect.poll(() => row.locator('.contact').textContent()).toContain('+45 12 34 56 78');
    await row.locator('select.outcome').selectOption('false_alarm');
    await row.locator('textarea.note').click();
    await page.keyboard.type('Borgeren havde taget ');

    // Updates arrive: the same dose reported again (this very row changes) and a new alert elsewhere in the queue.
    expect((await post('/v1/devices/robot-12/events', { eventId: 'again-0', seq: 5000, type: 'dose_failed', occurredAtMs: clock.now(), doseId: 'dose-0000', payload: {} })).status).toBe(201);
    expect((await post('/v1/devices/robot-12/events', { eventId: 'new-1', seq: 5001, type: 'missed_dose', occurredAtMs: clock.now(), doseId: 'dose-new', payload: {} })).status).toBe(201);
    await expect.poll(() => row.locator('td:nth-child(8)').textContent(), { timeout: 10_000 }).toBe('2');
    await expect.poll(() => page.textContent('.count.prio-high')).toBe(`Høj: ${ALERTS + 1}`);
    expect(await page.textContent('#queue-shown')).toBe(`Viser 1–50 af ${ALERTS + 1}`);

    await page.keyboard.type('medicinen');
    expect(await row.locator('select.outcome').inputValue()).toBe('false_alarm');
    expect(await row.locator('textarea.note').inputValue()).toBe('Borgeren havde taget medicinen');
    expect(await row.locator('.contact').textContent()).toContain('+45 12 34 56 78');
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/alarm-dashboard.png' });

    await row.locator('button.resolve-button').click();
    await expect.poll(() => page.locator('#queue tbody tr', { hasText: 'dose-0000' }).count(), { timeout: 10_000 }).toBe(0);
    // Resolved alerts, filtered by state, say how they ended in words.
    await page.selectOption('select[name=state]', 'resolved');
    await expect.poll(() => page.textContent('#queue tbody tr:first-child td.state')).toBe('Afsluttet: Falsk alarm');
    await page.selectOption('select[name=state]', '');
    const resolved = app.db.prepare(`SELECT a.outcome, (SELECT detail_json FROM audit WHERE alert_id = a.id AND action = 'alert.resolve') AS detail FROM alerts a WHERE dose_id = 'dose-0000'`).get() as { outcome: string; detail: string };
    expect(resolved.outcome).toBe('false_alarm');
    expect(JSON.parse(resolved.detail)).toEqual({ outcome: 'false_alarm', note: 'Borgeren havde taget medicinen' });
  });
});

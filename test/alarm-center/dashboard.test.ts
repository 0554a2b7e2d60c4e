// Browser test in Debian's Chromium: log in, see an alert from a signed device post, claim it, resolve it.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { addOperator, registerDevice, startAlarmCenter, type RunningAlarmCenter } from '../../alarm-center/src/server.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import { silent } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
let dir: string;
let centre: RunningAlarmCenter;
let browser: Browser;
let secret: string;
const clock = new SystemClock();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-dash-'));
  const dbPath = join(dir, 'ac.db');
  secret = registerDevice(dbPath, 'robot-12');
  addOperator(dbPath, 'olga', 'operator', 'olga-password');
  centre = await startAlarmCenter({ port: 0, dbPath, clock, logger: silent });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await centre?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(existsSync(CHROMIUM))('dashboard in Chromium', () => {
  it('shows a signed missed-dose alert; the operator claims and resolves it', async () => {
    const page = await browser.newPage();
    await page.goto(centre.url);
    await page.fill('input[name=username]', 'olga');
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('#login button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toMatch(/wrong/);
    await page.fill('input[name=password]', 'olga-password');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#main-view:not([hidden])');

    const path = '/v1/devices/robot-12/events';
    const raw = JSON.stringify({ eventId: 'ev-dash-1', seq: 1, type: 'missed_dose', occurredAtMs: clock.now(), doseId: 'dose-0800', payload: {} });
    const r = await fetch(centre.url + path, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...signedHeaders('robot-12', secret, 'POST', path, clock.now(), raw) } });
    expect(r.status).toBe(201);

    const row = page.locator('#queue tbody tr', { hasText: 'dose-0800' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('missed_dose');
    await row.getByRole('button', { name: 'Claim' }).click();
    await expect.poll(async () => row.textContent(), { timeout: 10_000 }).toContain('claimed (olga)');
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/alarm-dashboard.png', fullPage: true });
    await row.locator('select.outcome').selectOption('reached_taken');
    await row.getByRole('button', { name: 'Resolve' }).click();
    await expect.poll(async () => page.locator('#queue tbody tr', { hasText: 'dose-0800' }).count(), { timeout: 10_000 }).toBe(0);
    const login = await fetch(`${centre.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'olga', password: 'olga-password' }) });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const all = (await (await fetch(`${centre.url}/v1/alerts?all=true`, { headers: { cookie } })).json()) as { alerts: { state: string; outcome: string }[] };
    expect(all.alerts[0]).toMatchObject({ state: 'resolved', outcome: 'reached_taken' });
    await page.close();
  });
});

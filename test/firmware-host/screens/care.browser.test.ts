// The pharmacy screen in Debian's Chromium over the REAL controller and store: commissioning with an administrator's
// PIN, a load confirmed with whose roll it is, then pause, travel and withdrawal, each with its printable receipt.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import { createControllerBackend } from '../../../firmware-host/src/screens/controller-backend.js';
import type { ScreenBackend } from '../../../firmware-host/src/screens/backend.js';
import { createScreenServer } from '../../../firmware-host/src/screens/server.js';
import { setPin } from '../../../firmware-host/src/screens/pin.js';
import { ARTIFACTS } from './browser-kit.js';
import { manifestFor, series } from '../roll/manifest-kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0); // 07:00 in Copenhagen
const H = 3_600_000;
const silent = pino({ level: 'silent' });

describe('pharmacy care actions over the real controller in Chromium', () => {
  let dir: string;
  let clock: ManualClock;
  let h: SimHarness;
  let backend: ScreenBackend;
  let app: FastifyInstance;
  let base: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'dosis-screens-care-'));
    clock = new ManualClock(T0);
    h = new SimHarness({ seed: 12, clock, dbPath: join(dir, 'robot.db'), logger: silent }).start();
    // No citizen configured: the robot is set up on the screen.
    backend = createControllerBackend({ controller: h.controller, store: h.store, clock, profile: h.profile, link: h.link, logger: silent });
    app = createScreenServer({ backend, db: h.store.db, clock, logger: silent });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    setPin(h.store.db, 'anna', '4711', T0);
    setPin(h.store.db, 'root', '9090', T0);
    h.store.setAdmin('root', true);
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1024, height: 800 },
      locale: 'da-DK',
      timezoneId: 'UTC',
    });
    page = await context.newPage();
    await page.goto(base + '/pharmacy');
    await page.fill('#staff-id', 'anna');
    await page.fill('#pin', '4711');
    await page.click('#login-submit');
    await page.locator('#app').waitFor();
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the receipt behind a link in a new page; returns its title and its rows' pouch labels. */
  async function receipt(linkId: string): Promise<{ title: string | null; labels: string[] }> {
    const href = await page.locator(`#${linkId}`).getAttribute('href');
    const r = await context.newPage();
    try {
      await r.goto(base + href!);
      const rows = await r.locator('#receipt-table tbody tr td:first-child').allTextContents();
      return { title: await r.locator('h1').textContent(), labels: rows };
    } finally {
      await r.close();
    }
  }

  it('commissions the robot with an administrator\'s PIN only, then loads a roll confirmed with whose it is', async () => {
    await expect.poll(() => page.locator('#commission-status').textContent()).toBe('Robotten er ikke sat op til en borger.');
    // Not loadable before the robot is set up.
    await page.fill('#manifest-text', manifestFor('R1', series(T0 + H, 8, 6)));
    await page.click('#validate');
    await expect.poll(() => page.locator('#problems li').first().textContent()).toContain('DOSIS_ERR_NOT_COMMISSIONED');

    await page.fill('#commission-citizen', 'C1');
    await page.fill('#admin-id', 'anna');
    await page.fill('#admin-pin', '4711');
    await page.click('#commission-submit');
    await expect.poll(() => page.locator('#commission-result').textContent()).toMatch(/^Det lykkedes ikke/);
    expect(h.store.commissioning()).toBeUndefined();
    await page.fill('#admin-id', 'root');
    await page.fill('#admin-pin', '9090');
    await page.click('#commission-submit');
    await expect.poll(() => page.locator('#commission-status').textContent()).toBe('Sat op til borger: C1');
    expect(h.store.commissioning()).toMatchObject({ citizenId: 'C1', by: 'root' });

    await page.click('#validate');
    await expect.poll(() => page.locator('#roll-whose').textContent()).toBe('Rullen er til Test Person, født 1940-01-01, for 2027-01-04 – 2027-01-06');
    await page.click('#confirm-load');
    await expect.poll(() => page.locator('#load-result').textContent()).toBe('Rullen er indlæst.');
    const r = await receipt('load-receipt-link');
    expect(r.title).toBe('Kvittering for indlæst rulle');
    expect(r.labels).toEqual(['R1-001', 'R1-002', 'R1-003', 'R1-004', 'R1-005', 'R1-006', 'R1-007', 'R1-008']);
  });

  it('pauses for a hospital stay: the doses in it are suspended and listed, and the alarm centre is told', async () => {
    // The robot's zone is Copenhagen: 13:00 to 01:00 local covers the doses at 14:00 and 20:00.
    await page.fill('#pause-from', '2027-01-04T13:00');
    await page.fill('#pause-until', '2027-01-05T01:00');
    await page.click('#pause-start');
    await page.locator('#care-receipt-link').waitFor();
    await expect.poll(() => page.locator('#pause-status').textContent()).toMatch(/^På pause fra 04\.01\.2027,? 13\.00 til 05\.01\.2027,? 01\.00$/);
    const r = await receipt('care-receipt-link');
    expect(r).toEqual({ title: 'Kvittering for pause', labels: ['R1-002', 'R1-003'] });
    expect(h.store.openDoses().map((d) => d.label)).toEqual(['R1-001', 'R1-004', 'R1-005', 'R1-006', 'R1-007', 'R1-008']);
    expect(h.store.db.prepare('SELECT type FROM outbox').pluck().all()).toEqual(['care_paused']);
    await page.screenshot({ path: join(ARTIFACTS, 'pharmacy-care-paused.png'), fullPage: true });
  });

  it('releases the next doses for travel with the PIN again, and withdraws one by one', async () => {
    await page.fill('#travel-count', '2');
    await page.fill('#travel-pin', '0000');
    await page.click('#travel-start');
    await expect.poll(() => page.locator('#care-result').textContent()).toMatch(/^Det lykkedes ikke/);
    await page.fill('#travel-pin', '4711');
    await page.click('#travel-start');
    await page.locator('#care-receipt-link').waitFor();
    expect(await receipt('care-receipt-link')).toEqual({ title: 'Kvittering for rejsepakke', labels: ['R1-001', 'R1-004'] });

    await page.locator('#upcoming input[value="R1-006"]').check();
    // The travel receipt's link is still on the page: wait for the link to the new receipt, not for any link.
    const travelHref = await page.locator('#care-receipt-link').getAttribute('href');
    await page.click('#withdraw-start');
    await expect.poll(() => page.locator('#care-receipt-link').getAttribute('href')).not.toBe(travelHref);
    expect(await receipt('care-receipt-link')).toEqual({ title: 'Kvittering for tilbagekaldte poser', labels: ['R1-006'] });
    expect(h.store.openDoses().map((d) => d.label)).toEqual(['R1-005', 'R1-007', 'R1-008']);
    // The citizen's next dose is the first one still to be dispensed here.
    expect(backend.citizenView().nextDose?.doseId).toBe('R1-005');
  });

  it('replaces the roll only when the staff tick to take the old pouches back, and lists them on the receipt', async () => {
    await page.fill('#manifest-text', manifestFor('R2', series(T0 + 25 * H, 4, 6)));
    await page.click('#validate');
    await expect.poll(() => page.locator('#validation-summary').textContent()).toBe('Manifestet kan ikke indlæses: 1 problem.');
    expect(await page.locator('#problems li').first().textContent()).toContain('Den gamle rulle har poser, der ikke er udleveret');
    expect(await page.locator('#return-pending-text').textContent()).toBe('Tag den gamle rulles 5 poser, der ikke er udleveret, retur');
    await page.locator('#return-pending').check();
    await page.click('#validate');
    await expect.poll(() => page.locator('#validation-summary').textContent()).toBe('Manifestet er i orden: 4 poser. 1 advarsel.');
    await page.click('#confirm-load');
    await expect.poll(() => page.locator('#load-result').textContent()).toBe('Rullen er indlæst.');
    // What came back: the three still to be dispensed and the two suspended in the pause, never cut either.
    expect(await receipt('load-receipt-link')).toEqual({ title: 'Kvittering for udskiftet rulle', labels: ['R1-002', 'R1-003', 'R1-005', 'R1-007', 'R1-008'] });
    expect(h.store.activeRoll()?.rollId).toBe('R2');
  });
});

// The screens in Debian's Chromium over the REAL controller: a SimHarness robot behind a real HTTP screen server.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { type BrowserContext, chromium } from 'playwright-core';
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

describe('screens over the real controller in Chromium', () => {
  let dir: string;
  let clock: ManualClock;
  let h: SimHarness;
  let backend: ScreenBackend;
  let app: FastifyInstance;
  let base: string;
  let context: BrowserContext;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'dosis-screens-controller-'));
    clock = new ManualClock(T0);
    h = new SimHarness({ seed: 11, clock, dbPath: join(dir, 'robot.db'), logger: silent }).start();
    backend = createControllerBackend({
      controller: h.controller, store: h.store, clock, profile: h.profile, link: h.link, logger: silent, citizenId: 'C1',
      onLoaded: (r) => h.sim.loadPouches(r.pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount }))),
    });
    app = createScreenServer({ backend, db: h.store.db, clock, logger: silent });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    setPin(h.store.db, 'anna', '4711', T0);
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
      viewport: { width: 1024, height: 600 },
      locale: 'da-DK',
      timezoneId: 'UTC',
    });
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('citizen: a due dose, the on-screen button, "take the cup"', async () => {
    expect(backend.loadRoll(manifestFor('R1', series(T0 + H, 4, 6)), 'anna').ok).toBe(true);
    expect(h.runUntil(() => backend.citizenView().phase === 'due', 2 * H)).toBe(true);
    const page = await context.newPage();
    try {
      await page.goto(base + '/');
      await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('due');
      await expect.poll(() => page.locator('#headline').textContent()).toBe('Tid til din medicin — tryk på knappen');
      await page.screenshot({ path: join(ARTIFACTS, 'controller-citizen-due.png') });

      await page.click('#main-button');
      // The press reaches the real controller over HTTP; the robot then runs on the manual clock.
      await expect.poll(() => h.store.recentEvents(20).some((e) => e.type === 'screen_button')).toBe(true);
      expect(h.runUntil(() => backend.citizenView().phase === 'dispensing', 10_000)).toBe(true);
      await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('dispensing');
      expect(h.runUntil(() => backend.citizenView().phase === 'present', 120_000)).toBe(true);
      await expect.poll(() => page.locator('#headline').textContent()).toBe('Tag bægeret');
      await page.screenshot({ path: join(ARTIFACTS, 'controller-citizen-present.png') });

      h.sim.takeCup();
      expect(h.runUntil(() => h.outcomes.length === 1, 60_000)).toBe(true);
      expect(h.outcomes[0]).toMatchObject({ final: 'taken', cls: 'correct' });
      await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('idle');
    } finally {
      await page.close();
    }
  });

  it('pharmacy: loads the next roll through the screen', async () => {
    const file = join(dir, 'roll-r2.json');
    // R2 takes over at R1's first dose not yet dispensed (R1-002); R1's three pouches left come back.
    const r2 = series(T0 + 7 * H, 4, 6);
    writeFileSync(file, manifestFor('R2', r2));
    const page = await context.newPage();
    try {
      await page.goto(base + '/pharmacy');
      await page.fill('#staff-id', 'anna');
      await page.fill('#pin', '4711');
      await page.click('#login-submit');
      await page.locator('#app').waitFor();
      expect(await page.locator('#roll-id').textContent()).toBe('R1');
      expect(await page.locator('#pouches-left').textContent()).toBe('3');

      await page.setInputFiles('#manifest-file', file);
      await expect.poll(() => page.locator('#manifest-text').inputValue()).toContain('"rollId": "R2"');
      await page.click('#validate');
      await expect.poll(() => page.locator('#validation-summary').textContent()).toBe('Manifestet kan ikke indlæses: 1 problem.');
      await page.locator('#return-pending').check();
      await page.click('#validate');
      await expect.poll(() => page.locator('#validation-summary').textContent()).toMatch(/^Manifestet er i orden: 4 poser\./);
      await page.click('#confirm-load');
      await expect.poll(() => page.locator('#load-result').textContent()).toBe('Rullen er indlæst.');
      await expect.poll(() => page.locator('#roll-id').textContent()).toBe('R2');
      await page.screenshot({ path: join(ARTIFACTS, 'controller-pharmacy-loaded.png'), fullPage: true });
      expect(h.store.activeRoll()?.rollId).toBe('R2');
      expect(h.store.remainingPouches().map((d) => d.intakeAtMs)).toEqual(r2.map((p) => p.intakeAtMs));
      expect(h.store.allDoses().filter((d) => d.rollId === 'R1').map((d) => d.state)).toEqual(['taken', 'returned', 'returned', 'returned']);
    } finally {
      await page.close();
    }
  });
});

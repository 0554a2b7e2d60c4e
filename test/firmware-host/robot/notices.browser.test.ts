// The robot's own notices in Chromium, on both screens of the one assembly: a robot with no alarm centre says so, and a
// controller error turns the citizen's screen to an error.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import { setPin } from '../../../firmware-host/src/screens/pin.js';
import { ARTIFACTS } from '../screens/browser-kit.js';

const CHROMIUM = '/usr/bin/chromium';
const T0 = Date.UTC(2027, 0, 4, 6, 0);
const MIN = 60_000;
const silent = pino({ level: 'silent' });

describe.runIf(existsSync(CHROMIUM))('the robot\'s notices on its screens, in Chromium', () => {
  let dir: string;
  let clock: ManualClock;
  let h: SimHarness;
  let urls: { citizen: string; pharmacy: string };
  let context: BrowserContext;
  const fatal: Error[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'dosis-robot-notices-'));
    clock = new ManualClock(T0);
    // No alarm centre; verdict rules that throw, so the first dispensing is a controller error.
    h = new SimHarness({
      seed: 4, clock, dbPath: join(dir, 'robot.db'), logger: silent, screens: { port: 0 }, citizenId: 'C1',
      judge: () => {
        throw new RangeError('verdict rules broke');
      },
    });
    h.robot.onFatal((err) => fatal.push(err));
    urls = (await h.listen())!;
    h.start();
    setPin(h.store.db, 'anna', '4711', T0);
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1024, height: 600 },
      locale: 'da-DK',
      timezoneId: 'UTC',
    });
  });

  afterAll(async () => {
    await context?.close();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('both screens say the robot is not connected to an alarm centre', async () => {
    expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
    const citizen = await context.newPage();
    await citizen.goto(urls.citizen);
    await expect.poll(() => citizen.locator('#notice').textContent()).toMatch(/ikke forbundet til en alarmcentral/);
    expect(await citizen.locator('#notice').isVisible()).toBe(true);
    await citizen.screenshot({ path: join(ARTIFACTS, 'robot-citizen-no-alarm-centre.png') });

    const pharmacy = await context.newPage();
    await pharmacy.goto(`${urls.pharmacy}?lang=en`);
    await pharmacy.fill('#staff-id', 'anna');
    await pharmacy.fill('#pin', '4711');
    await pharmacy.click('#login-submit');
    await expect.poll(() => pharmacy.locator('#notice').textContent()).toMatch(/not connected to an alarm centre/);
    expect(await pharmacy.locator('#notice').isVisible()).toBe(true);
    await pharmacy.screenshot({ path: join(ARTIFACTS, 'robot-pharmacy-no-alarm-centre.png') });
  });

  it('a controller error shows on the citizen\'s screen at once', async () => {
    const citizen = await context.newPage();
    await citizen.goto(urls.citizen);
    h.loadRoll([{ intakeAtMs: clock.now() + 2 * MIN, pills: 2 }]);
    expect(h.runUntil(() => h.controller.status().phase === 'early', 10 * MIN)).toBe(true);
    h.controller.pressButton();
    expect(h.runUntil(() => fatal.length > 0, 5 * MIN)).toBe(true);
    await expect.poll(() => citizen.getAttribute('body', 'data-phase')).toBe('error');
    await expect.poll(() => citizen.getAttribute('body', 'data-reason')).toBe('device_fault');
    await expect.poll(() => citizen.locator('#notice').textContent()).toMatch(/fejl i robotten/);
    await citizen.screenshot({ path: join(ARTIFACTS, 'robot-citizen-controller-error.png') });
  });
});

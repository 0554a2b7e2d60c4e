// The pharmacy screen in Debian's Chromium: PIN lock-out, loading a roll from a file (every problem shown, then confirm), unloading with a receipt.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PIN_LOCKOUT_MS, setPin } from '../../../firmware-host/src/screens/pin.js';
import { ARTIFACTS, type BrowserRig, startRig } from './browser-kit.js';
import { T0 } from './fake-backend.js';

// CRLF line endings on purpose: the text the backend gets must be the file's, byte for byte.
const MANIFEST_TEXT = ['{', '  "rollId": "R7",', '  "pouches": [', '    { "position": 1 },', '    { "position": 2 },', '    { "position": 3 }', '  ]', '}', ''].join('\r\n');

describe('pharmacy screen in Chromium', () => {
  let rig: BrowserRig;
  let page: Page;

  beforeAll(async () => {
    rig = await startRig();
    setPin(rig.db, 'anna', '4711', T0);
    setPin(rig.db, 'bo', '2468', T0);
  });
  afterAll(async () => {
    await rig?.close();
  });
  beforeEach(async () => {
    await rig.context.clearCookies();
    page = await rig.context.newPage();
    await page.setViewportSize({ width: 1024, height: 600 });
  });
  afterEach(async () => {
    await page.close();
  });

  async function logIn(staffId: string, pin: string): Promise<void> {
    await page.fill('#staff-id', staffId);
    await page.fill('#pin', pin);
    await page.click('#login-submit');
  }

  it('locks a staff id out after 5 wrong PINs, also for the right PIN, until 15 minutes have passed', async () => {
    await page.goto(rig.base + '/pharmacy');
    await page.locator('#login-form').waitFor();
    expect(await page.locator('#app').isVisible()).toBe(false);
    for (let i = 1; i <= 4; i++) {
      await logIn('anna', '0000');
      await expect.poll(() => page.locator('#login-message').textContent()).toBe(`Forkert medarbejder-id eller PIN-kode. ${5 - i} forsøg tilbage.`);
    }
    await logIn('anna', '0000');
    await expect.poll(() => page.locator('#login-message').textContent()).toBe('For mange forkerte PIN-koder. Prøv igen om 15 minutter.');
    await page.screenshot({ path: join(ARTIFACTS, 'pharmacy-locked.png') });
    await page.evaluate('document.getElementById("login-message").textContent = ""');
    await logIn('anna', '4711');
    await expect.poll(() => page.locator('#login-message').textContent()).toMatch(/^For mange forkerte PIN-koder/);
    expect(await page.locator('#app').isVisible()).toBe(false);

    rig.clock.advance(PIN_LOCKOUT_MS);
    await logIn('anna', '4711');
    await page.locator('#app').waitFor();
    expect(await page.locator('#who').textContent()).toBe('anna');
    expect(await page.locator('#roll-id').textContent()).toBe('R1');
    expect(await page.locator('#pouches-left').textContent()).toBe('12');
    expect(await page.locator('#health-link').textContent()).toBe('up');
    expect(await page.locator('#events-body tr').count()).toBe(1);
    await page.click('#logout');
    await page.locator('#login-form').waitFor();
  });

  it('loads a roll through the screen: the file is checked, every problem shown, and loaded only after confirming', async () => {
    const file = join(rig.dir, 'roll-r7.json');
    writeFileSync(file, MANIFEST_TEXT);
    await page.goto(rig.base + '/pharmacy');
    await logIn('bo', '2468');
    await page.locator('#app').waitFor();

    // First with problems: both are listed and there is nothing to confirm.
    rig.backend.problems = [
      { path: '/pouches/1/intake', severity: 'error', code: 'intake_past', message: 'intake time is already past' },
      { path: '/pouches/2/pillCount', severity: 'warning', code: 'pills_high', message: 'unusually many pills' },
    ];
    await page.setInputFiles('#manifest-file', file);
    await expect.poll(() => page.locator('#manifest-text').inputValue()).toContain('"rollId": "R7"');
    await page.click('#validate');
    await expect.poll(() => page.locator('#validation-summary').textContent()).toBe('Manifestet kan ikke indlæses: 2 problemer.');
    const items = await page.locator('#problems li').allTextContents();
    expect(items).toHaveLength(2);
    expect(items[0]).toMatch(/^fejl /);
    expect(items[0]).toContain('/pouches/1/intake');
    expect(items[0]).toContain('intake time is already past');
    expect(items[1]).toMatch(/^advarsel /);
    expect(items[1]).toContain('unusually many pills');
    expect(await page.locator('#confirm-load').isVisible()).toBe(false);
    expect(rig.backend.loadCalls).toHaveLength(0);

    // The pharmacy fixes it; checked again it is valid with a warning, and staff confirm.
    rig.backend.problems = [{ path: '/pouches/2/pillCount', severity: 'warning', code: 'pills_high', message: 'unusually many pills' }];
    await page.click('#validate');
    await expect.poll(() => page.locator('#validation-summary').textContent()).toBe('Manifestet er i orden: 3 poser. 1 advarsel.');
    expect(await page.locator('#problems li').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'pharmacy-validated.png'), fullPage: true });
    expect(rig.backend.loadCalls).toHaveLength(0);
    expect(await page.locator('#confirm-load').textContent()).toBe('Bekræft: indlæs 3 poser');
    await page.click('#confirm-load');
    await expect.poll(() => page.locator('#load-result').textContent()).toBe('Rullen er indlæst.');
    expect(rig.backend.loadCalls).toEqual([{ manifestText: MANIFEST_TEXT, staffId: 'bo' }]);
    expect(rig.backend.validateCalls.at(-1)).toBe(MANIFEST_TEXT);
    await expect.poll(() => page.locator('#roll-id').textContent()).toBe('R7');
    rig.backend.problems = [];
  });

  it('unloads the roll and prints a return receipt', async () => {
    await page.goto(rig.base + '/pharmacy?lang=en');
    await logIn('bo', '2468');
    await page.locator('#app').waitFor();
    expect(await page.locator('#validate').textContent()).toBe('Check');
    const rollId = await page.locator('#roll-id').textContent();
    await page.click('#unload-start');
    await page.click('#unload-yes');
    await expect.poll(() => page.locator('#unload-result p').textContent()).toBe('The roll is unloaded. 2 pouches came back.');
    expect(rig.backend.unloadCalls.at(-1)).toBe('bo');
    await expect.poll(() => page.locator('#roll-id').textContent()).toBe('No roll in the machine.');
    const href = await page.locator('#receipt-link').getAttribute('href');
    expect(href).toMatch(/^\/api\/pharmacy\/receipt\/[0-9a-f-]{36}\?lang=en$/);
    await page.goto(rig.base + href!);
    expect(await page.locator('h1').textContent()).toBe('Return receipt');
    expect(await page.locator('#receipt-roll').textContent()).toBe(rollId);
    const rows = await page.locator('#receipt-table tbody tr').allTextContents();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(`${rollId}-003`);
    expect(rows[1]).toContain(`${rollId}-004`);
    expect(await page.locator('#print').isVisible()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'pharmacy-receipt.png') });
  });
});

// The citizen's screen in Debian's Chromium: idle, a due dose, the button, dispensing, "take the cup", a yellow error, English, reconnecting.

import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ARTIFACTS, type BrowserRig, startRig } from './browser-kit.js';
import { T0, idleView } from './fake-backend.js';

const DOSE = { doseId: 'R1-003', intakeAtMs: Date.UTC(2026, 0, 6, 7, 0), pillCount: 4 };
const SIZES = [
  { width: 1024, height: 600 },
  { width: 800, height: 480 },
];

describe('citizen screen in Chromium', () => {
  let rig: BrowserRig;
  let page: Page;

  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    await rig?.close();
  });
  beforeEach(async () => {
    rig.backend.view = idleView(T0);
    rig.backend.presses = 0;
    rig.backend.onPress = null;
    page = await rig.context.newPage();
    await page.setViewportSize(SIZES[0]!);
  });
  afterEach(async () => {
    await page.close();
  });

  const headline = () => page.locator('#headline');
  const detail = () => page.locator('#detail');

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
  }

  // Nothing scrolls, nothing spills out of its box, nothing lies off-screen.
  const LAYOUT_PROBLEMS = `(() => {
    const out = [];
    const de = document.documentElement;
    if (de.scrollHeight > de.clientHeight || de.scrollWidth > de.clientWidth) out.push('page scrolls');
    for (const id of ['top', 'message', 'main-button', 'supply']) {
      const e = document.getElementById(id);
      if (!e || e.hidden) continue;
      if (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1) out.push(id + ' overflows its box');
      const b = e.getBoundingClientRect();
      if (b.top < 0 || b.left < 0 || b.bottom > innerHeight || b.right > innerWidth) out.push(id + ' is off-screen');
    }
    return out;
  })()`;

  /** The page must fit both displays without scrolling, whatever it shows now. */
  async function expectNoScroll(): Promise<void> {
    for (const size of SIZES) {
      await page.setViewportSize(size);
      const problems = (await page.evaluate(LAYOUT_PROBLEMS)) as string[];
      expect(problems, `${size.width}×${size.height} on ${await page.getAttribute('body', 'data-phase')}`).toEqual([]);
    }
    await page.setViewportSize(SIZES[0]!);
  }

  it('shows the clock and the next dose in the robot\'s time zone when idle, and the roll running low', async () => {
    rig.backend.view = { ...idleView(T0), lowSupply: { daysLeft: 2 } };
    await page.goto(rig.base + '/');
    await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('idle');
    // The browser runs in UTC; the robot's zone is Copenhagen: 06:50 UTC shows as 07.50.
    await expect.poll(() => headline().textContent()).toMatch(/^07[.:]5\d$/);
    expect(await detail().textContent()).toBe('Tirsdag 6. januar');
    expect(await page.locator('#next').textContent()).toMatch(/^Næste medicin: i dag kl\. 08[.:]00$/);
    expect(await page.locator('#supply').textContent()).toBe('Der er kun medicin til 2 dage mere.');
    expect(await page.locator('#main-button').isVisible()).toBe(false);
    await expectNoScroll();
    await shot('citizen-idle-low-supply');
    rig.backend.set({ nextDose: { doseId: 'R1-004', intakeAtMs: Date.UTC(2026, 0, 7, 7, 0) }, lowSupply: null });
    await expect.poll(() => page.locator('#next').textContent()).toMatch(/^Næste medicin: i morgen kl\. 08[.:]00$/);
    expect(await page.locator('#supply').isVisible()).toBe(false);
  });

  it('offers the dose early with the button, and says so plainly when the machine is offline', async () => {
    await page.goto(rig.base + '/');
    rig.backend.set({ phase: 'early', currentDose: DOSE });
    await expect.poll(() => headline().textContent()).toBe('Du kan tage din medicin nu');
    expect(await page.locator('#main-button').isVisible()).toBe(true);
    await expectNoScroll();
    rig.backend.set({ phase: 'offline', currentDose: null });
    await expect.poll(() => headline().textContent()).toBe('Maskinen er ikke klar lige nu');
    expect(await page.locator('#main-button').isVisible()).toBe(false);
    await expectNoScroll();
  });

  it('takes the citizen from a due dose through the button and dispensing to "take the cup"', async () => {
    await page.goto(rig.base + '/');
    await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('idle');
    rig.backend.set({ phase: 'due', currentDose: DOSE, nextDose: null, reminder: true, nowMs: T0 + 600_000 });
    await expect.poll(() => headline().textContent()).toBe('Tid til din medicin — tryk på knappen');
    expect(await detail().textContent()).toMatch(/kl\. 08[.:]00/);
    // The reminder sounds while the view asks for it.
    await expect.poll(() => page.getAttribute('html', 'data-reminder')).toBe('on');
    await expect.poll(async () => Number(await page.getAttribute('html', 'data-beeps'))).toBeGreaterThanOrEqual(1);
    expect(await page.getAttribute('html', 'data-audio')).toBe('running');

    const button = page.locator('#main-button');
    expect(await button.textContent()).toBe('Tryk her');
    for (const size of SIZES) {
      await page.setViewportSize(size);
      const box = await button.boundingBox();
      expect(box, `${size.width}×${size.height}`).not.toBeNull();
      expect(box!.height).toBeGreaterThanOrEqual(120);
      expect(box!.width).toBeGreaterThanOrEqual(76);
      expect(box!.y + box!.height).toBeLessThanOrEqual(size.height);
    }
    await page.setViewportSize(SIZES[0]!);
    await expectNoScroll();
    await shot('citizen-due');

    rig.backend.onPress = () => rig.backend.set({ phase: 'dispensing', dispensing: { step: 'rotating' }, reminder: false });
    await button.click();
    await expect.poll(() => rig.backend.presses).toBe(1);
    await expect.poll(() => headline().textContent()).toBe('Vent lidt — din medicin gøres klar');
    expect(await detail().textContent()).toBe('Finder din pose …');
    await expect.poll(() => page.getAttribute('html', 'data-reminder')).toBe('off');
    rig.backend.set({ dispensing: { step: 'counting' } });
    await expect.poll(() => detail().textContent()).toBe('Tæller tabletterne …');
    await expect.poll(() => page.locator('#progress-bar').evaluate((e) => (e as unknown as { style: { width: string } }).style.width)).toBe('88%');
    await expectNoScroll();
    await shot('citizen-dispensing');

    rig.backend.set({ phase: 'present', dispensing: null });
    await expect.poll(() => headline().textContent()).toBe('Tag bægeret');
    expect(await page.locator('#main-button').isVisible()).toBe(false);
    await expectNoScroll();
    await shot('citizen-present');
    expect(rig.backend.presses).toBe(1);
  });

  it('shows a yellow dose in plain words, never the reason code', async () => {
    await page.goto(rig.base + '/');
    rig.backend.set({ phase: 'error', error: { reason: 'undercount_after_retry', staffTold: true }, currentDose: DOSE });
    await expect.poll(() => headline().textContent()).toBe('Tag ikke medicinen. Plejepersonalet har fået besked.');
    expect(await detail().textContent()).toBe('Maskinen talte for få tabletter.');
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).toBe('rgb(255, 216, 61)');
    await expectNoScroll();
    await shot('citizen-error');
    rig.backend.set({ error: { reason: 'some_new_code', staffTold: true } });
    await expect.poll(() => detail().textContent()).toBe('Der er sket en fejl i maskinen.');
    expect(await page.locator('body').textContent()).not.toContain('some_new_code');
  });

  it('says the staff were told only when they were; with the cup missing it asks for the cup and offers the button again', async () => {
    await page.goto(rig.base + '/');
    rig.backend.set({ phase: 'error', error: { reason: 'undercount_after_retry', staffTold: false }, currentDose: DOSE });
    await expect.poll(() => headline().textContent()).toBe('Tag ikke medicinen.');
    rig.backend.set({ phase: 'error', error: { reason: 'cup_missing', staffTold: false }, currentDose: DOSE });
    await expect.poll(() => headline().textContent()).toBe('Sæt bægeret på plads');
    expect(await detail().textContent()).toBe('Tryk så på knappen igen.');
    expect(await page.locator('body').textContent()).not.toContain('Plejepersonalet');
    expect(await page.locator('#main-button').isVisible()).toBe(true);
    const presses = rig.backend.presses;
    await page.click('#main-button');
    await expect.poll(() => rig.backend.presses).toBe(presses + 1);
    await expectNoScroll();
    await shot('citizen-cup-missing');
    rig.backend.set({ phase: 'error', error: { reason: 'pouch_expired', staffTold: true } });
    await expect.poll(() => detail().textContent()).toBe('Posen var for gammel og blev ikke åbnet.');
    rig.backend.set({ phase: 'error', error: { reason: 'cup_missing', staffTold: false } });
    await page.goto(rig.base + '/?lang=en');
    await expect.poll(() => headline().textContent()).toBe('Put the cup in its place');
    expect(await detail().textContent()).toBe('Then press the button again.');
    await page.evaluate('localStorage.removeItem("dosis.lang")');
  });

  it("shows the dose's instructions from the roll with the dose, in the screen's language", async () => {
    rig.backend.set({ phase: 'due', error: null, currentDose: DOSE, reminder: false, instructions: { da: 'Tages med mad', en: 'Take with food' } });
    await page.goto(rig.base + '/');
    await expect.poll(() => page.locator('#instructions').textContent()).toBe('Tages med mad');
    await expectNoScroll();
    await page.goto(rig.base + '/?lang=en');
    await expect.poll(() => page.locator('#instructions').textContent()).toBe('Take with food');
    rig.backend.set({ phase: 'present', instructions: { da: 'Opløses i vand' } });
    await expect.poll(() => page.locator('#instructions').textContent()).toBe('Opløses i vand');
    rig.backend.set({ phase: 'idle', currentDose: null, instructions: null });
    await expect.poll(() => page.locator('#instructions').isVisible()).toBe(false);
    await page.evaluate('localStorage.removeItem("dosis.lang")');
  });

  it('speaks English on ?lang=en and switches language with the toggle', async () => {
    rig.backend.set({ phase: 'due', currentDose: DOSE, reminder: false });
    await page.goto(rig.base + '/?lang=en');
    await expect.poll(() => headline().textContent()).toBe('Time for your medicine — press the button');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.locator('#main-button').textContent()).toBe('Press here');
    await expectNoScroll();
    await shot('citizen-due-en');
    rig.backend.set({ phase: 'error', error: { reason: 'pouch_not_empty', staffTold: true } });
    await expect.poll(() => headline().textContent()).toBe('Do not take the medicine. The care staff have been told.');
    expect(await detail().textContent()).toBe('Pills were stuck in the pouch.');
    rig.backend.set({ phase: 'present', error: null });
    await expect.poll(() => headline().textContent()).toBe('Take the cup');

    const toggle = page.locator('#lang-toggle');
    const tb = await toggle.boundingBox();
    expect(tb!.height).toBeGreaterThanOrEqual(76);
    expect(await toggle.textContent()).toBe('Dansk');
    await toggle.click();
    await expect.poll(() => headline().textContent()).toBe('Tag bægeret');
    expect(page.url()).toContain('lang=da');
    // The choice is a setting: a plain reload keeps it.
    await page.goto(rig.base + '/');
    await expect.poll(() => headline().textContent()).toBe('Tag bægeret');
    await page.locator('#lang-toggle').click();
    await expect.poll(() => headline().textContent()).toBe('Take the cup');
    await page.goto(rig.base + '/');
    await expect.poll(() => headline().textContent()).toBe('Take the cup');
    await page.evaluate('localStorage.removeItem("dosis.lang")');
  });

  it('reconnects by itself when the server restarts', async () => {
    await page.goto(rig.base + '/');
    await expect.poll(() => page.getAttribute('body', 'data-phase')).toBe('idle');
    await rig.restartServer();
    rig.backend.set({ phase: 'due', currentDose: DOSE, reminder: false });
    await expect.poll(() => headline().textContent(), { timeout: 8000 }).toBe('Tid til din medicin — tryk på knappen');
    expect(rig.backend.listeners).toBe(1);
  });
});

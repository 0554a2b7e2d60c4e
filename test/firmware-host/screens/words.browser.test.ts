// The screens' words in Debian's Chromium: from the first paint every element named with data-m shows its catalogue
// text, in Danish and in English, and no raw catalogue key appears anywhere on either page.

import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { t, type Lang } from '../../../protocol/src/i18n.js';
import { setPin } from '../../../firmware-host/src/screens/pin.js';
import { type BrowserRig, startRig } from './browser-kit.js';
import { T0 } from './fake-backend.js';

const RAW_KEY = /\b(?:pharmacy|citizen|common|roll)\.[A-Za-z]\w*/;

/** Every text the page shows or holds in its elements (hidden ones too), not the catalogue data it carries. */
const SHOWN_TEXT = `(() => {
  const out = [document.title];
  const walk = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const tag = n.parentElement && n.parentElement.tagName;
    if (tag !== 'SCRIPT' && tag !== 'STYLE' && n.textContent.trim()) out.push(n.textContent.trim());
  }
  return out;
})()`;
const DATA_M = `[...document.querySelectorAll('[data-m]')].map((n) => [n.dataset.m, n.textContent])`;

describe('the words of both screens in Chromium', () => {
  let rig: BrowserRig;
  let page: Page;

  beforeAll(async () => {
    rig = await startRig();
    setPin(rig.db, 'anna', '4711', T0);
  });
  afterAll(async () => {
    await rig?.close();
  });
  beforeEach(async () => {
    await rig.context.clearCookies();
    page = await rig.context.newPage();
  });
  afterEach(async () => {
    await page.close();
  });

  async function expectCatalogueWords(lang: Lang): Promise<void> {
    const named = (await page.evaluate(DATA_M)) as [string, string][];
    expect(named.length).toBeGreaterThan(0);
    for (const [key, text] of named) expect(text, key).toBe(t(lang, key));
    const shown = (await page.evaluate(SHOWN_TEXT)) as string[];
    expect(shown.filter((s) => RAW_KEY.test(s))).toEqual([]);
  }

  for (const lang of ['da', 'en'] as const) {
    it(`pharmacy (${lang}): the login page and, after it, every section`, async () => {
      await page.goto(`${rig.base}/pharmacy?lang=${lang}`);
      await page.locator('#login-form').waitFor();
      expect(await page.locator('#login h2').textContent()).toBe(t(lang, 'pharmacy.screen.loginTitle'));
      expect(await page.title()).toBe(t(lang, 'pharmacy.screen.title'));
      await expectCatalogueWords(lang);
      await page.fill('#staff-id', 'anna');
      await page.fill('#pin', '4711');
      await page.click('#login-submit');
      await page.locator('#app').waitFor();
      await expect.poll(() => page.locator('#roll-status dt').first().textContent()).toBe(t(lang, 'pharmacy.screen.rollId'));
      await expectCatalogueWords(lang);
      // The other language at a click, with no request for words in between.
      const other: Lang = lang === 'da' ? 'en' : 'da';
      await page.click('#lang-toggle');
      await expect.poll(() => page.locator('#roll-status dt').first().textContent()).toBe(t(other, 'pharmacy.screen.rollId'));
      await expectCatalogueWords(other);
    });

    it(`citizen (${lang}): the first view, and the other language at a click`, async () => {
      await page.goto(`${rig.base}/?lang=${lang}`);
      await expect.poll(() => page.evaluate('document.body.dataset.phase')).not.toBe('loading');
      expect(await page.locator('#lang-toggle').textContent()).toBe(t(lang, 'common.otherLanguage'));
      expect(await page.title()).toBe(t(lang, 'citizen.screen.pageTitle'));
      await expectCatalogueWords(lang);
      await page.click('#lang-toggle');
      const other: Lang = lang === 'da' ? 'en' : 'da';
      await expect.poll(() => page.locator('#lang-toggle').textContent()).toBe(t(other, 'common.otherLanguage'));
      await expectCatalogueWords(other);
    });
  }
});

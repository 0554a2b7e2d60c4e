// End to end: robot + simulator + a listening alarm centre + the delivery loop, wired as the demo wires them, on a fast paced clock.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { PacedClock, SystemClock } from '../../protocol/src/clock.js';
import { loadProfile } from '../../hardware/src/profile.js';
import type { FaultRates } from '../../device-sim/src/faults.js';
import { DEMO_OPERATOR, startDemoSystem, type DemoSystem } from '../../device-sim/src/demo/system.js';

const CHROMIUM = '/usr/bin/chromium';
const SPEED = 1200;
const silent = process.env.DOSIS_E2E_LOG ? pino({ level: process.env.DOSIS_E2E_LOG }, pino.destination(2)) : pino({ level: 'silent' });
const profile = loadProfile('dosis-r1');

let dirs: string[] = [];
let systems: DemoSystem[] = [];
let clocks: PacedClock[] = [];
let browser: Browser | undefined;

afterEach(async () => {
  await browser?.close();
  browser = undefined;
  for (const s of systems) await s.close();
  for (const c of clocks) c.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  systems = [];
  clocks = [];
  dirs = [];
});

async function start(faults: Partial<FaultRates> = {}): Promise<DemoSystem> {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-e2e-'));
  dirs.push(dir);
  const clock = new PacedClock(SPEED, new SystemClock().now());
  clocks.push(clock);
  clock.start();
  const s = await startDemoSystem({
    dataDir: dir, clock, speed: SPEED, profile, seed: 42, faults, serial: 'memory', portScreen: 0, portAlarm: 0, logger: silent,
  });
  systems.push(s);
  return s;
}

/** One dose a minute from now and one far enough away that the first keeps its whole window. */
function loadOneDose(s: DemoSystem, rollId: string): string {
  const now = s.clock.now();
  s.loadRoll([{ intakeAtMs: now + 60_000, pills: 3 }, { intakeAtMs: now + 6 * 3600_000, pills: 2 }], rollId);
  return s.store.openDoses()[0]!.doseId;
}

function centreRows<T>(s: DemoSystem, sql: string, ...params: unknown[]): T[] {
  const db = new Database(s.alarmDbPath, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

describe.runIf(existsSync(CHROMIUM))('a dose not taken, seen by an operator in Chromium', () => {
  it('becomes an alert on the dashboard; the operator logs in, claims and resolves it', async () => {
    const s = await start();
    const doseId = loadOneDose(s, 'E2E1');
    // No one presses the button: overdue at 30 min, missed at 120 min (virtual), both delivered and folded into one alert.
    await expect.poll(() => s.store.dose(doseId)?.state, { timeout: 20_000, interval: 100 }).toBe('missed');
    await expect.poll(() => s.delivery.depth(), { timeout: 10_000, interval: 100 }).toBe(0);
    const events = centreRows<{ type: string }>(s, 'SELECT type FROM events WHERE dose_id = ? ORDER BY seq', doseId).map((e) => e.type);
    expect(events).toEqual(['dose_overdue', 'missed_dose']);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const page = await browser.newPage();
    await page.goto(s.urls.alarm);
    await page.fill('input[name=username]', DEMO_OPERATOR.username);
    await page.fill('input[name=password]', DEMO_OPERATOR.password);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#main-view:not([hidden])');

    const row = page.locator('#queue tbody tr', { hasText: doseId });
    await row.waitFor({ timeout: 10_000 });
    // The dashboard opens in Danish: the alert type and state in words.
    expect(await row.locator('td.type').textContent()).toBe('Glemt medicin');
    await row.getByRole('button', { name: 'Tag alarmen' }).click();
    await expect.poll(async () => row.locator('td.state').textContent(), { timeout: 10_000 }).toBe(`Taget af ${DEMO_OPERATOR.username}`);
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/e2e-robot-alarm.png', fullPage: true });
    await row.locator('select.outcome').selectOption('reached_taken');
    await row.getByRole('button', { name: 'Afslut' }).click();
    await expect.poll(async () => page.locator('#queue tbody tr', { hasText: doseId }).count(), { timeout: 10_000 }).toBe(0);

    const alerts = centreRows<{ state: string; outcome: string; claimed_by: string }>(s, 'SELECT state, outcome, claimed_by FROM alerts WHERE dose_id = ?', doseId);
    expect(alerts).toEqual([{ state: 'resolved', outcome: 'reached_taken', claimed_by: DEMO_OPERATOR.username }]);
  }, 60_000);
});

describe('a yellow dose reaches the alarm centre exactly once', () => {
  it('across a stopped and restarted centre, and a delivery whose answer was lost', async () => {
    const s = await start({ pillsStuckForGood: 1 });
    const doseId = loadOneDose(s, 'E2E2');
    await s.stopAlarmCentre();
    await expect.poll(() => s.controller.status().phase, { timeout: 10_000, interval: 50 }).toBe('due');
    s.sim.pressButton();
    await expect.poll(() => s.store.dose(doseId)?.state, { timeout: 10_000, interval: 50 }).toBe('failed');
    expect(s.store.dose(doseId)?.cls).toBe('yellow');

    // The centre is down: the event waits in the outbox while delivery keeps failing.
    await expect.poll(() => s.delivery.stats.failures, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    expect(s.delivery.depth()).toBeGreaterThanOrEqual(1);

    await s.startAlarmCentre();
    await expect.poll(() => s.delivery.depth(), { timeout: 15_000, interval: 100 }).toBe(0);
    const count = () => centreRows<{ n: number }>(s, "SELECT count(*) AS n FROM events WHERE type = 'dose_failed' AND dose_id = ?", doseId)[0]!.n;
    expect(count()).toBe(1);

    // The robot "did not hear" the centre's answer (a crash before marking it delivered): it sends the event again.
    const robotDb = s.store.db;
    robotDb.prepare("UPDATE outbox SET delivered_at_ms = NULL WHERE type = 'dose_failed' AND dose_id = ?").run(doseId);
    const duplicatesBefore = s.delivery.stats.duplicates;
    await s.stopAlarmCentre();
    await s.startAlarmCentre();
    await expect.poll(() => s.delivery.depth(), { timeout: 15_000, interval: 100 }).toBe(0);
    expect(s.delivery.stats.duplicates).toBeGreaterThan(duplicatesBefore);
    expect(count()).toBe(1);
    const alerts = centreRows<{ type: string; state: string }>(s, 'SELECT type, state FROM alerts WHERE dose_id = ?', doseId);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'dose_failed', state: 'open' });
    // The day's figures in the heartbeat count the failed dose as due and not taken: adherence 0 of 1. Summed over the
    // days reported: on the paced clock a run that starts near the robot's midnight ends on the next day.
    const sql = 'SELECT sum(dosings) AS dosings, sum(taken) AS taken, sum(failed) AS failed FROM daily_reports';
    await expect.poll(() => centreRows<{ dosings: number; taken: number; failed: number }>(s, sql)[0], { timeout: 15_000, interval: 100 })
      .toEqual({ dosings: 1, taken: 0, failed: 1 });
  }, 60_000);
});

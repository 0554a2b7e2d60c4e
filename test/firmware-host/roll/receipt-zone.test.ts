// The receipts the command line writes (dosis roll load/unload, dosis robot pause/resume/travel/withdraw) give their
// times in the robot's zone (--time-zone, as dosis host is given it), not in Copenhagen's whatever the robot's zone.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../../protocol/src/clock.js';
import { main as rollMain } from '../../../firmware-host/src/roll/cli.js';
import { main as robotMain } from '../../../firmware-host/src/care/cli.js';
import { getReceipt, renderReceiptHtml, type Receipt } from '../../../firmware-host/src/screens/receipts.js';
import { Store, TIME_ZONE_META } from '../../../firmware-host/src/store/store.js';
import { manifestFor, series } from './manifest-kit.js';
import { runCli } from './cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'dosis-receipt-zone-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const H = 3_600_000;
const NOW = new SystemClock().now();
// No daylight saving time, and 7 or 8 hours from Copenhagen all year.
const ZONE = 'Asia/Tokyo';

const run = runCli;

let n = 0;
const file = (text: string) => {
  const f = join(tmp, `roll-${++n}.json`);
  writeFileSync(f, text);
  return f;
};

async function robotDb(name: string): Promise<string> {
  const db = join(tmp, name, 'robot.db');
  expect((await run(robotMain, ['commission', '--citizen', 'C1', '--staff', 'admin', '--pin-stdin', '--db', db], '9999')).code).toBe(0);
  expect((await run(rollMain, ['add-staff', '--staff', 'anna', '--pin-stdin', '--db', db], '4711')).code).toBe(0);
  return db;
}

/** The receipt a command printed the id of. */
function receiptOf(db: string, out: string): Receipt {
  const id = /receipt ([0-9a-f-]{36})/i.exec(out)?.[1];
  expect(id, out).toBeDefined();
  const s = Store.open(db, { clock: new SystemClock() });
  try {
    return getReceipt(s.db, id!)!;
  } finally {
    s.close();
  }
}

/** A time as the receipt prints it, in a zone. */
const printed = (ms: number, timeZone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(new Date(ms));

function expectInZone(r: Receipt, times: number[]): void {
  expect(r.timeZone).toBe(ZONE);
  const html = renderReceiptHtml(r, 'en');
  expect(html).toContain(`(${ZONE})`);
  for (const ms of times) {
    expect(html).toContain(printed(ms, ZONE));
    expect(html).not.toContain(printed(ms, 'Europe/Copenhagen'));
  }
}

describe("the command line's receipts are in the robot's zone", () => {
  it('roll load, replace and unload', async () => {
    const db = await robotDb('roll');
    const as = ['--staff', 'anna', '--pin-stdin', '--db', db, '--time-zone', ZONE];
    const first = series(NOW + H, 4, 6);
    const load = await run(rollMain, ['load', file(manifestFor('R1', first)), ...as], '4711');
    expect(load.code).toBe(0);
    expectInZone(receiptOf(db, load.out), first.map((p) => p.intakeAtMs));

    const second = series(NOW + H, 4, 6);
    const replace = await run(rollMain, ['load', file(manifestFor('R2', second)), ...as, '--return-pending'], '4711');
    expect(replace.code).toBe(0);
    const replaced = receiptOf(db, replace.out);
    expect(replaced.kind).toBe('replace');
    expectInZone(replaced, [...first, ...second].map((p) => p.intakeAtMs));

    const unload = await run(rollMain, ['unload', ...as], '4711');
    expect(unload.code).toBe(0);
    expectInZone(receiptOf(db, unload.out), second.map((p) => p.intakeAtMs));
  });

  it('robot pause, resume, travel and withdraw', async () => {
    const db = await robotDb('care');
    const as = ['--staff', 'anna', '--pin-stdin', '--db', db, '--time-zone', ZONE];
    const pouches = series(NOW + H, 8, 6);
    const at = (i: number) => pouches[i]!.intakeAtMs;
    expect((await run(rollMain, ['load', file(manifestFor('R1', pouches)), ...as], '4711')).code).toBe(0);
    const iso = (ms: number) => new Date(ms).toISOString();

    const pause = await run(robotMain, ['pause', '--from', iso(at(1)), '--until', iso(at(3)), ...as], '4711');
    expect(pause.code).toBe(0);
    const paused = receiptOf(db, pause.out);
    expectInZone(paused, [at(1), at(2)]);
    expect(renderReceiptHtml(paused, 'en')).toContain(`${printed(at(1), ZONE)} – ${printed(at(3), ZONE)}`);
    expectInZone(receiptOf(db, (await run(robotMain, ['resume', ...as], '4711')).out), [at(1), at(2)]);
    expectInZone(receiptOf(db, (await run(robotMain, ['travel', '--doses', '2', ...as], '4711')).out), [at(0), at(1)]);
    expectInZone(receiptOf(db, (await run(robotMain, ['withdraw', '--dose', 'R1-006', ...as], '4711')).out), [at(5)]);
    expectInZone(receiptOf(db, (await run(robotMain, ['withdraw', '--from', iso(at(6)), ...as], '4711')).out), [at(6), at(7)]);
  });

  it('takes the zone the robot\'s host recorded in the database when none is given; a given one still wins', async () => {
    const db = await robotDb('recorded');
    const s = Store.open(db, { clock: new SystemClock() });
    s.setMeta(TIME_ZONE_META, ZONE);
    s.close();
    const as = ['--staff', 'anna', '--pin-stdin', '--db', db];
    const load = await run(rollMain, ['load', file(manifestFor('R1', series(NOW + H, 2, 6))), ...as], '4711');
    expect(load.code, load.err).toBe(0);
    expect(receiptOf(db, load.out).timeZone).toBe(ZONE);
    const travel = await run(robotMain, ['travel', '--doses', '1', ...as, '--time-zone', 'Europe/London'], '4711');
    expect(travel.code, travel.err).toBe(0);
    expect(receiptOf(db, travel.out).timeZone).toBe('Europe/London');
  });

  it("takes Copenhagen when no zone is given (dosis host's default), and refuses a zone it does not know before anything is done", async () => {
    const db = await robotDb('default');
    const as = ['--staff', 'anna', '--pin-stdin', '--db', db];
    const load = await run(rollMain, ['load', file(manifestFor('R1', series(NOW + H, 2, 6))), ...as], '4711');
    expect(receiptOf(db, load.out).timeZone).toBe('Europe/Copenhagen');
    const bad = await run(robotMain, ['travel', '--doses', '1', ...as, '--time-zone', 'Europe/Kopenhagen'], '4711');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--time-zone must be an IANA time zone');
    const unload = await run(rollMain, ['unload', ...as, '--time-zone', 'Mars/Olympus'], '4711');
    expect(unload.code).toBe(2);
    const s = Store.open(db, { clock: new SystemClock() });
    try {
      expect(s.activeRoll()?.rollId).toBe('R1');
      expect(s.openDoses()).toHaveLength(2);
    } finally {
      s.close();
    }
  });
});

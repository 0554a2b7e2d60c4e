// `dosis roll load|unload|add-staff` against a real SQLite file: PIN on stdin, lock-out, every problem printed, atomic replacement.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SystemClock } from '../../../protocol/src/clock.js';
import { UsageError } from '../../../bin/cli-kit.js';
import { main } from '../../../firmware-host/src/roll/cli.js';
import { main as robotMain } from '../../../firmware-host/src/care/cli.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { pinAudit } from '../../../firmware-host/src/screens/pin.js';
import { manifestFor, series } from './manifest-kit.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'dosis-roll-load-'));
const H = 3_600_000;
// Manifests must lie in the future of the command's real clock.
const NOW = new SystemClock().now();

afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

let n = 0;
function file(text: string): string {
  const f = join(tmp, `roll-${++n}.json`);
  writeFileSync(f, text);
  return f;
}

/** main() in-process, with a PIN line on stdin and stdout/stderr captured; usage errors become exit 2 as in bin/cli.ts. */
async function dosis(argv: string[], pin = '', entry: typeof main = main): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await entry(argv, { stdin: Readable.from([`${pin}\n`]) });
    return { code, out, err };
  } catch (e) {
    if (e instanceof UsageError) return { code: 2, out, err: err + e.message };
    throw e;
  } finally {
    vi.restoreAllMocks();
  }
}

/** `dosis robot …` in-process. */
const robot = (argv: string[], pin = '') => dosis(argv, pin, robotMain);

function openDb(db: string): Store {
  return Store.open(db, { clock: new SystemClock() });
}

describe('dosis roll load', () => {
  const db = join(tmp, 'var', 'robot.db');

  it('sets a PIN, loads a roll, replaces it atomically and refuses an invalid one with every problem', async () => {
    expect((await robot(['commission', '--citizen', 'C1', '--staff', 'anna', '--pin-stdin', '--db', db], '12')).code).toBe(2);
    expect(await robot(['commission', '--citizen', 'C1', '--staff', 'anna', '--pin-stdin', '--db', db], '4711')).toMatchObject({ code: 0 });
    expect(existsSync(db)).toBe(true);
    expect(await dosis(['add-staff', '--staff', 'anna', '--pin-stdin', '--db', db], '4711')).toMatchObject({ code: 0 });

    const r1 = series(NOW + H, 4, 6);
    const loaded = await dosis(['load', file(manifestFor('R1', r1)), '--staff', 'anna', '--pin-stdin', '--db', db], '4711');
    expect(loaded.code).toBe(0);
    expect(loaded.out).toMatch(/^loaded roll R1 for citizen C1: 4 pouches due /m);

    // Invalid: a wrong citizen and a pouch in the past, both reported; the roll stays.
    const bad = manifestFor('R2', [{ intakeAtMs: NOW - 2 * H, pills: 2 }, ...series(NOW + 19 * H, 2, 6)], 'OTHER');
    const refused = await dosis(['load', file(bad), '--staff', 'anna', '--pin-stdin', '--db', db], '4711');
    expect(refused.code).toBe(1);
    expect(refused.out).toContain('wrong_citizen');
    expect(refused.out).toContain('past_intake');
    expect(refused.out).toMatch(/invalid \(\d+ errors\); nothing was loaded/);

    // R2 takes over at R1's first dose not yet dispensed; R1's four pouches come back only when the staff say so.
    const r2 = series(NOW + H, 3, 6);
    const overlap = await dosis(['load', file(manifestFor('R2', r2)), '--staff', 'anna', '--pin-stdin', '--db', db], '4711');
    expect(overlap.code).toBe(1);
    expect(overlap.out).toContain('roll_overlap');
    const replaced = await dosis(['load', file(manifestFor('R2', r2)), '--staff', 'anna', '--pin-stdin', '--db', db, '--return-pending'], '4711');
    expect(replaced.code).toBe(0);
    expect(replaced.out).toContain('roll_overlap_returned');
    expect(replaced.out).toContain('roll R1 unloaded: 4 pouches came back: R1-001 R1-002 R1-003 R1-004');

    // R1 again: a valid manifest the store refuses half-way (after unloading R2 in the same transaction).
    const again = await dosis(['load', file(manifestFor('R1', series(NOW + H, 2, 6))), '--staff', 'anna', '--pin-stdin', '--db', db, '--return-pending'], '4711');
    expect(again.code).toBe(1);
    expect(again.out).toContain('DOSIS_ERR_ROLL_LOADED_BEFORE');
    const store = openDb(db);
    try {
      expect(store.activeRoll()?.rollId).toBe('R2');
      expect(store.remainingPouches().map((d) => d.intakeAtMs)).toEqual(r2.map((p) => p.intakeAtMs));
      expect(store.recentEvents(10).map((e) => e.type)).toContain('roll_load_refused');
    } finally {
      store.close();
    }

    const unloaded = await dosis(['unload', '--staff', 'anna', '--pin-stdin', '--db', db], '4711');
    expect(unloaded.code).toBe(0);
    expect(unloaded.out).toMatch(/roll R2 unloaded by anna: 3 pouches came back \(receipt [0-9a-f-]{36}\)/);
  });

  it('exits 3 on a wrong PIN and locks the staff id out after 5, also for the right PIN', async () => {
    const lockDb = join(tmp, 'lock.db');
    await robot(['commission', '--citizen', 'C1', '--staff', 'bo', '--pin-stdin', '--db', lockDb], '2468');
    const f = file(manifestFor('R5', series(NOW + H, 2, 6)));
    for (let i = 1; i <= 4; i++) {
      const r = await dosis(['load', f, '--staff', 'bo', '--pin-stdin', '--db', lockDb], '0000');
      expect(r.code).toBe(3);
      expect(r.err).toContain(`Wrong staff id or PIN (${5 - i} attempt`);
    }
    const fifth = await dosis(['load', f, '--staff', 'bo', '--pin-stdin', '--db', lockDb], '0000');
    expect(fifth.code).toBe(3);
    expect(fifth.err).toContain('Too many wrong PINs; locked until');
    const right = await dosis(['load', f, '--staff', 'bo', '--pin-stdin', '--db', lockDb], '2468');
    expect(right.code).toBe(3);
    expect(right.err).toContain('locked until');
    const store = openDb(lockDb);
    try {
      expect(store.activeRoll()).toBeUndefined();
      expect(pinAudit(store.db).map((a) => a.outcome)).toEqual(['set', 'wrong', 'wrong', 'wrong', 'wrong', 'wrong', 'locked']);
    } finally {
      store.close();
    }
  });

  it('never takes a PIN on the command line, and needs --staff', async () => {
    const f = file(manifestFor('R6', series(NOW + H, 2, 6)));
    expect((await dosis(['load', f, '--staff', 'anna', '--pin', '4711', '--db', join(tmp, 'x.db')])).code).toBe(2);
    expect((await dosis(['load', f, '--staff', 'anna', '--db', join(tmp, 'x.db')])).err).toContain('--pin-stdin');
    expect((await dosis(['load', f, '--pin-stdin', '--db', join(tmp, 'x.db')], '4711')).err).toContain('--staff');
  });

  it('runs as a process: PIN piped on stdin, default db under var/', async () => {
    const cwd = mkdtempSync(join(tmp, 'proc-'));
    const f = file(manifestFor('R7', series(NOW + H, 3, 6)));
    const run = (args: string[], pin: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [join(ROOT, 'bin/dosis.js'), 'roll', ...args], { cwd }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
        child.stdin!.end(`${pin}\n`);
      });
    expect((await run(['add-staff', '--staff', 'cy', '--pin-stdin'], '13579')).code).toBe(2);
    const commission = await new Promise<number>((resolve) => {
      const child = execFile(process.execPath, [join(ROOT, 'bin/dosis.js'), 'robot', 'commission', '--citizen', 'C1', '--staff', 'cy', '--pin-stdin'], { cwd }, (error) =>
        resolve(error ? Number(error.code) : 0),
      );
      child.stdin!.end('13579\n');
    });
    expect(commission).toBe(0);
    expect((await run(['load', f, '--staff', 'cy', '--pin-stdin'], '97531')).code).toBe(3);
    const ok = await run(['load', f, '--staff', 'cy', '--pin-stdin'], '13579');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('loaded roll R7');
    expect(existsSync(join(cwd, 'var', 'dosis-robot.db'))).toBe(true);
  });
});

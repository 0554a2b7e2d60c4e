// What pharmacy staff and a new user found wrong with rolls, each as a test: the robot bound to its citizen, no dose
// dropped by an early roll, receipts, duplicate keys, FIFOs, early windows, use-by dates, a mistyped --db, and the
// `dosis robot` commands for commissioning, pause, travel and withdrawal on a real SQLite file.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, SystemClock } from '../../../protocol/src/clock.js';
import { main as rollMain } from '../../../firmware-host/src/roll/cli.js';
import { main as robotMain } from '../../../firmware-host/src/care/cli.js';
import { main as hostMain } from '../../../firmware-host/src/cli.js';
import { validateManifest } from '../../../firmware-host/src/roll/validate.js';
import { exampleManifest } from '../../../firmware-host/src/roll/example.js';
import { findDuplicateKeys } from '../../../firmware-host/src/roll/json-locate.js';
import { loadedRollOf } from '../../../firmware-host/src/roll/continuity.js';
import { getReceipt, renderReceiptHtml } from '../../../firmware-host/src/screens/receipts.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { manifestFor, series } from './manifest-kit.js';
import { runCli } from './cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'dosis-findings-'));
const H = 3_600_000;
const NOW = new SystemClock().now();
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const f = join(tmp, `roll-${++n}.json`);
  writeFileSync(f, text);
  return f;
}

const run = runCli;
const roll = (argv: string[], pin = '') => run(rollMain, argv, pin);
const robot = (argv: string[], pin = '') => run(robotMain, argv, pin);

function withStore<T>(db: string, body: (s: Store) => T): T {
  const s = Store.open(db, { clock: new SystemClock() });
  try {
    return body(s);
  } finally {
    s.close();
  }
}

async function commissioned(name: string, citizen = 'C1'): Promise<string> {
  const db = join(tmp, name, 'robot.db');
  expect((await robot(['commission', '--citizen', citizen, '--staff', 'admin', '--pin-stdin', '--db', db], '9999')).code).toBe(0);
  expect((await roll(['add-staff', '--staff', 'anna', '--pin-stdin', '--db', db], '4711')).code).toBe(0);
  return db;
}
const as = (db: string) => ['--staff', 'anna', '--pin-stdin', '--db', db];

describe('the robot is bound to its citizen', () => {
  it('refuses a roll for another citizen after an unload, when nothing is loaded to compare with', async () => {
    const db = await commissioned('bound');
    expect((await roll(['load', file(manifestFor('R1', series(NOW + H, 4, 6))), ...as(db)], '4711')).code).toBe(0);
    expect((await roll(['unload', ...as(db)], '4711')).code).toBe(0);
    const other = await roll(['load', file(manifestFor('R2', series(NOW + H, 4, 6), 'OTHERCITIZEN')), ...as(db)], '4711');
    expect(other.code).toBe(1);
    expect(other.out).toContain('wrong_citizen');
    expect(withStore(db, (s) => s.activeRoll())).toBeUndefined();
  });

  it('commissions once; another citizen only after an administrator decommissions a robot with every roll out', async () => {
    const db = await commissioned('rebind');
    expect((await robot(['commission', '--citizen', 'C1', '--staff', 'admin', '--pin-stdin', '--db', db], '9999')).out).toContain('already set up for citizen C1');
    const other = await robot(['commission', '--citizen', 'C2', '--staff', 'admin', '--pin-stdin', '--db', db], '9999');
    expect(other.code).toBe(1);
    expect(other.err).toContain('decommission');
    // Staff who are not administrators cannot bind or unbind.
    expect((await robot(['decommission', ...as(db)], '4711')).code).toBe(3);
    expect((await roll(['load', file(manifestFor('R1', series(NOW + H, 4, 6))), ...as(db)], '4711')).code).toBe(0);
    const loaded = await robot(['decommission', '--staff', 'admin', '--pin-stdin', '--db', db], '9999');
    expect(loaded.code).toBe(1);
    expect(loaded.err).toContain('Roll R1 is in the robot');
    expect((await roll(['unload', ...as(db)], '4711')).code).toBe(0);
    const done = await robot(['decommission', '--staff', 'admin', '--pin-stdin', '--db', db, '--lang', 'da'], '9999');
    expect(done).toMatchObject({ code: 0 });
    expect(done.out).toContain('afmeldt fra borger C1');
    expect((await robot(['commission', '--citizen', 'C2', '--staff', 'admin', '--pin-stdin', '--db', db], '9999')).code).toBe(0);
    expect(withStore(db, (s) => s.recentEvents(100).map((e) => e.type))).toEqual(expect.arrayContaining(['robot_commissioned', 'robot_decommissioned']));
  });

  it('refuses to load on a robot not yet commissioned', async () => {
    const db = await commissioned('unbound');
    await robot(['decommission', '--staff', 'admin', '--pin-stdin', '--db', db], '9999');
    const r = await roll(['load', file(manifestFor('R1', series(NOW + H, 4, 6))), ...as(db)], '4711');
    expect(r.code).toBe(1);
    expect(r.err).toContain('not set up for a citizen');
  });
});

describe('a new roll follows the first dose not yet dispensed', () => {
  it('refuses a roll that starts after the loaded roll ends while its 56 doses are still to come', async () => {
    const db = await commissioned('continuity');
    const old = series(NOW + H, 56, 6);
    expect((await roll(['load', file(manifestFor('R1', old)), ...as(db)], '4711')).code).toBe(0);
    // Starts 6 h after R1's last pouch: the old check passed it, and R1's 56 doses were dropped.
    const next = await roll(['load', file(manifestFor('R2', series(old[55]!.intakeAtMs + 6 * H, 56, 6))), ...as(db)], '4711');
    expect(next.code).toBe(1);
    expect(next.out).toContain('roll_skips_doses');
    expect(next.out).toContain('56 pouches of roll R1 due before it would be dropped');
    expect(withStore(db, (s) => s.remainingPouches().length)).toBe(56);
  });

  it('does not wait on doses whose window closed while no controller ran: they are missed already', () => {
    const clock = new ManualClock(NOW);
    const s = Store.open(':memory:', { clock });
    try {
      s.commission('C1', 'admin');
      s.loadRoll({ rollId: 'R1', citizenId: 'C1', pouches: series(NOW + H, 3, 6).map((p, i) => ({ rollId: 'R1', position: i + 1, slot: i, label: `R1-00${i + 1}`, intakeAtMs: p.intakeAtMs, pillCount: 3 })) }, 'anna');
      // R1-001 is past its close (2 h by default), R1-002 is due now, R1-003 is still to come.
      clock.advanceTo(NOW + 7.5 * H);
      expect(loadedRollOf(s, clock.now())?.pending?.map((d) => d.label)).toEqual(['R1-002', 'R1-003']);
    } finally {
      s.close();
    }
  });

  it('takes the old pouches back only when asked, and lists each on the replace receipt', async () => {
    const db = await commissioned('overlap');
    const old = series(NOW + H, 8, 6);
    expect((await roll(['load', file(manifestFor('R1', old)), ...as(db)], '4711')).code).toBe(0);
    const takeover = file(manifestFor('R2', series(NOW + H, 8, 6)));
    expect((await roll(['load', takeover, ...as(db)], '4711')).out).toContain('error roll_overlap');
    const ok = await roll(['load', takeover, ...as(db), '--return-pending'], '4711');
    expect(ok.code).toBe(0);
    const receiptId = /Receipt ([0-9a-f-]{36})/.exec(ok.out)![1]!;
    const receipt = withStore(db, (s) => getReceipt(s.db, receiptId))!;
    expect(receipt).toMatchObject({ kind: 'replace', rollId: 'R2' });
    expect(receipt.returned.map((p) => p.label)).toEqual(['R1-001', 'R1-002', 'R1-003', 'R1-004', 'R1-005', 'R1-006', 'R1-007', 'R1-008']);
    expect(receipt.loaded).toHaveLength(8);
    const da = renderReceiptHtml(receipt, 'da');
    const en = renderReceiptHtml(receipt, 'en');
    expect(da).toContain('Kvittering for udskiftet rulle');
    expect(da).toContain('Poser fra den gamle rulle, der kom retur');
    expect(en).toContain('Roll replaced');
    for (const label of ['R1-001', 'R1-008', 'R2-001', 'R2-008']) expect(en).toContain(label);
  });
});

describe('manifests', () => {
  const CTX = { citizenId: 'C1', slotCount: 56, nowMs: NOW };
  const base = () => JSON.parse(manifestFor('R1', series(NOW + H, 4, 6))) as Record<string, unknown> & { pouches: Record<string, unknown>[] };

  it('refuses a repeated key, with where it is: a second intakeTime or rollId does not silently win', () => {
    const text = manifestFor('R1', series(NOW + H, 4, 6)).replace('"intakeTime": "', '"intakeTime": "08:00",\n        "intakeTime": "');
    const r = validateManifest(text, CTX);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ code: 'duplicate_key', path: '/pouches/0/intakeTime', line: 19, column: 9 })]);
    const twice = manifestFor('R1', series(NOW + H, 4, 6)).replace('"rollId": "R1",', '"rollId": "R1",\n  "rollId": "R9",');
    expect(validateManifest(twice, CTX).problems).toEqual([expect.objectContaining({ code: 'duplicate_key', path: '/rollId', line: 4 })]);
    // A flood of repeats is cut off, and says so.
    const flood = `{${Array.from({ length: 1500 }, () => '"a":1').join(',')}}`;
    const many = validateManifest(flood, CTX);
    expect(many.problems.filter((p) => p.code === 'duplicate_key').length).toBeGreaterThan(900);
    expect(many.problems.at(-1)).toMatchObject({ code: 'too_many_problems', message: expect.stringMatching(/^more than \d+ more problems/) });
    // The same name in different objects is no repeat.
    expect(validateManifest(manifestFor('R1', series(NOW + H, 4, 6)), CTX).ok).toBe(true);
  });

  it('finds repeats deep down and among escaped names, without building a path per level', () => {
    const deep = `${'{"a/b":['.repeat(20_000)}{"k~":1,"k\\u007e":2}${']}'.repeat(20_000)}`;
    const started = performance.now();
    const found = findDuplicateKeys(deep);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toBe(`${'/a~1b/0'.repeat(20_000)}/k~0`);
    expect(findDuplicateKeys('{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}')).toEqual([]);
  });

  it('refuses an early window that would close the dose before it is due', () => {
    const m = base();
    m.timing = { earlyMin: 720 };
    const r = validateManifest(JSON.stringify(m), CTX);
    expect(r.problems.map((p) => p.code)).toEqual(['bad_window', 'bad_window', 'bad_window']);
    m.timing = { earlyMin: 300 };
    expect(validateManifest(JSON.stringify(m), CTX).ok).toBe(true);
    // A field past its bound says what it means.
    m.timing = { earlyMin: 721 };
    expect(validateManifest(JSON.stringify(m), CTX).problems.find((p) => p.code === 'schema')).toMatchObject({
      path: '/timing/earlyMin', message: 'expected integer to be less or equal to 720 (minutes before the intake time the dose may be taken)',
    });
  });

  it('takes a use-by date per pouch, and refuses one that ends before the intake', () => {
    const m = base();
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    m.pouches[1]!.useBy = day(NOW + 7 * H - 86_400_000);
    const r = validateManifest(JSON.stringify(m), CTX);
    expect(r.problems.map((p) => `${p.path} ${p.code}`)).toEqual(['/pouches/1/useBy expires_before_intake']);
    m.pouches[1]!.useBy = day(NOW + 7 * H);
    m.pouches[1]!.instructions = { da: 'tages med mad', en: 'take with food' };
    const ok = validateManifest(JSON.stringify(m), CTX);
    expect(ok.ok).toBe(true);
    expect(ok.pouches[1]).toMatchObject({ instructions: { da: 'tages med mad', en: 'take with food' } });
    expect(ok.pouches[1]!.useByMs).toBeGreaterThan(ok.pouches[1]!.intakeAtMs);
  });

  it('names each problem in Danish with --lang da, the detail after it', async () => {
    const m = base();
    m.pouches[1]!.pillCount = 0;
    const r = await roll(['validate', file(JSON.stringify(m)), '--citizen', 'C1', '--lang', 'da']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('/pouches/1/pillCount: fejl zero_pills: En pose uden tabletter: position 2 holds 0 pills');
    expect(r.out).toMatch(/: ugyldig \(2 fejl, 0 advarsler\)\n$/);
    const ok = await roll(['validate', file(JSON.stringify(base())), '--lang', 'da']);
    expect(ok.out).toMatch(/: gyldig, 4 poser fra \S+ til \S+ \(0 fejl, 0 advarsler\)\n$/);
  });

  it('refuses anything but a regular file without reading it: a FIFO with no writer does not hang', async () => {
    const fifo = join(tmp, 'roll.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    const v = await roll(['validate', fifo]);
    expect(v.code).toBe(2);
    expect(v.out).toContain('error not_a_file');
    expect(v.out).toContain('a FIFO');
    const dir = join(tmp, 'a-dir.json');
    mkdirSync(dir);
    expect((await roll(['validate', dir, '--json'])).out).toContain('"code":"not_a_file"');
    const db = await commissioned('fifo');
    const l = await roll(['load', fifo, ...as(db)], '4711');
    expect(l.code).toBe(2);
    expect(l.out).toContain('not_a_file');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("the demo's example roll", () => {
  it('is for the robot\'s citizen and takes over at the first dose not yet dispensed', () => {
    const left = series(NOW + H, 6, 6).map((p) => ({ intakeAtMs: p.intakeAtMs, pills: p.pills }));
    const text = exampleManifest({ rollId: 'EX1', citizenId: 'C-DEMO', timeZone: 'Europe/Copenhagen', pouches: left });
    const pending = left.map((p, i) => ({ label: `DEMO-${i}`, intakeAtMs: p.intakeAtMs }));
    const ctx = { citizenId: 'C-DEMO', slotCount: 56, nowMs: NOW, loaded: { rollId: 'DEMO', firstIntakeAtMs: NOW - H, lastIntakeAtMs: left[5]!.intakeAtMs, pending } };
    expect(validateManifest(text, ctx).problems.map((p) => p.code)).toEqual(['roll_overlap']);
    const ok = validateManifest(text, { ...ctx, returnPending: true });
    expect(ok.problems.map((p) => p.code)).toEqual(['roll_overlap_returned']);
    expect(ok.pouches.map((p) => p.intakeAtMs)).toEqual(left.map((p) => p.intakeAtMs));
  });
});

describe('the command line', () => {
  it('refuses a database file that does not exist, except when setting a robot up', async () => {
    const missing = join(tmp, 'typo', 'robto.db');
    const f = file(manifestFor('R1', series(NOW + H, 4, 6)));
    for (const argv of [['load', f, ...as(missing)], ['unload', ...as(missing)], ['add-staff', ...as(missing)]]) {
      const r = await roll(argv, '4711');
      expect(r.code, argv[0]).toBe(2);
      expect(r.err).toContain(`The database ${missing} does not exist`);
    }
    const da = await robot(['pause', '--from', new Date(NOW).toISOString(), '--until', new Date(NOW + H).toISOString(), ...as(missing), '--lang', 'da'], '4711');
    expect(da.code).toBe(2);
    expect(da.err).toContain(`Databasen ${missing} findes ikke`);
    await expect(hostMain(['--port', '/dev/null', '--db', missing, '--no-alarm-center'])).rejects.toThrow(/does not exist; set the robot up first/);
    expect(existsSync(missing)).toBe(false);
  });

  it('speaks Danish with --lang da, from the same catalogue', async () => {
    const db = await commissioned('dansk');
    const loaded = await roll(['load', file(manifestFor('R1', series(NOW + H, 2, 6))), ...as(db), '--lang', 'da'], '4711');
    expect(loaded.out).toContain('rulle R1 indlæst til borger C1: 2 poser');
    expect(loaded.out).toMatch(/Kvittering [0-9a-f-]{36}/);
    const unloaded = await roll(['unload', ...as(db), '--lang', 'da'], '4711');
    expect(unloaded.out).toContain('rulle R1 taget ud af anna: 2 poser kom retur');
    expect((await roll(['unload', ...as(db), '--lang', 'da'], '0000')).err).toContain('Forkert medarbejder-id eller PIN-kode (4 forsøg tilbage)');
  });

  it('pauses, releases for travel and withdraws, each with its receipt', async () => {
    const db = await commissioned('care');
    const pouches = series(NOW + H, 12, 6);
    expect((await roll(['load', file(manifestFor('R1', pouches)), ...as(db)], '4711')).code).toBe(0);
    const iso = (ms: number) => new Date(ms).toISOString();
    const paused = await robot(['pause', '--from', iso(pouches[1]!.intakeAtMs), '--until', iso(pouches[3]!.intakeAtMs), ...as(db)], '4711');
    expect(paused.code).toBe(0);
    expect(paused.out).toContain('2 doses suspended');
    expect((await robot(['resume', ...as(db)], '4711')).out).toContain('2 doses will be dispensed again');
    const travel = await robot(['travel', '--doses', '3', ...as(db)], '4711');
    expect(travel.out).toContain('3 pouches released for the travel pack: R1-001 R1-002 R1-003');
    const one = await robot(['withdraw', '--dose', 'R1-005', ...as(db)], '4711');
    expect(one.out).toContain('1 pouch withdrawn: R1-005');
    const from = await robot(['withdraw', '--from', iso(pouches[9]!.intakeAtMs), ...as(db)], '4711');
    expect(from.out).toContain('3 pouches withdrawn: R1-010 R1-011 R1-012');
    const receiptId = /Receipt ([0-9a-f-]{36})/.exec(from.out)![1]!;
    const html = renderReceiptHtml(withStore(db, (s) => getReceipt(s.db, receiptId))!, 'da');
    expect(html).toContain('Tilbagekaldte poser (udleveres ikke)');
    expect(html).toContain('R1-012');
    expect(withStore(db, (s) => s.openDoses().map((d) => d.label))).toEqual(['R1-004', 'R1-006', 'R1-007', 'R1-008', 'R1-009']);
  });
});

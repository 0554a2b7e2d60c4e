// `dosis roll load|unload|add-staff`: loading a roll into the robot's database file from the command line, behind a staff PIN.
//
// The PIN comes on stdin only (--pin-stdin): a PIN on the command line would
// sit in the shell history and in every process listing. The same PIN table,
// scrypt hashing and lock-out as the pharmacy screen (screens/pin.ts) guard
// it. The load itself is the store's one transaction: the roll before is
// unloaded and the new one loaded, or nothing changes.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SystemClock } from '../../../protocol/src/clock.js';
import { DEFAULT_PROFILE_ID, loadProfile } from '../../../hardware/src/profile.js';
import { parseCommand, UsageError, type CommandSpec } from '../../../bin/cli-kit.js';
import { isLang, t, type Lang } from '../../../protocol/src/i18n.js';
import { Store, TIME_ZONE_META } from '../store/store.js';
import { migratePins, setPin, verifyPin } from '../screens/pin.js';
import { migrateReceipts, saveReceipt } from '../screens/receipts.js';
import type { ReturnedPouch } from '../screens/backend.js';
import { DEFAULT_TIME_ZONE } from './manifest-schema.js';
import { isValidTimeZone } from './local-time.js';
import { validateManifest } from './validate.js';
import { loadedRollOf } from './continuity.js';

export const DEFAULT_DB = 'var/dosis-robot.db';
export const EXIT = { ok: 0, invalid: 1, usage: 2, auth: 3 } as const;

/** The --lang option of the pharmacy-facing commands: their messages come from the shared catalogue. */
export const LANG_OPTION = { type: 'string', default: 'en' } as const;
export const LANG_HELP = 'language of the messages: da or en';

export function langOf(values: Record<string, unknown>): Lang {
  const v = values.lang;
  if (v === undefined) return 'en';
  if (!isLang(v)) throw new UsageError(`--lang must be da or en, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The --time-zone option of the commands that write a receipt. The robot's zone is configured on `dosis host`
 * (--time-zone, or its --config file) and kept nowhere in the database, so these commands are told it the same way;
 * the receipts the pharmacy screen writes use the running robot's zone, and these must agree with them.
 */
export const TIME_ZONE_OPTION = { type: 'string' } as const;
export const TIME_ZONE_HELP =
  `the robot's IANA time zone, for the receipt's times (default: the zone dosis host last ran with on this database, else ${DEFAULT_TIME_ZONE})`;

/** An explicit --time-zone, checked before anything else happens; undefined when not given. */
export function timeZoneOf(name: string, values: Record<string, unknown>): string | undefined {
  const v = values['time-zone'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !isValidTimeZone(v)) throw new UsageError(`${name}: --time-zone must be an IANA time zone such as ${DEFAULT_TIME_ZONE}, got ${JSON.stringify(v)}`);
  return v;
}

/** The receipt's zone: the one given, else the robot's own (as its host recorded it), else the default. */
export function receiptZone(given: string | undefined, store: Store): string {
  const stored = store.getMeta(TIME_ZONE_META);
  return given ?? (stored && isValidTimeZone(stored) ? stored : DEFAULT_TIME_ZONE);
}

export type CliIo = {
  /** Where --pin-stdin reads its line; process.stdin by default (tests pass a stream). */
  stdin?: NodeJS.ReadableStream;
};

type Spec = CommandSpec<Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>;

const PIN_HELP = 'read the PIN from the first line of stdin (required; a PIN is never taken on the command line)';
const RUNNING_NOTE =
  'It works on the database file. A running robot picks up a roll loaded this way at its next dose;\nwhile the robot runs, the pharmacy screen (/pharmacy) is the way to load and unload.';

const loadSpec = {
  name: 'roll load',
  summary: `Checks a roll manifest against the citizen the robot is commissioned for and loads it into the robot's database,\nreplacing the roll loaded before. If that roll still has pouches not yet dispensed, they come back only with\n--return-pending; the receipt lists them. ${RUNNING_NOTE}\nExit status: 0 loaded, 1 invalid or refused, 2 usage error, unreadable file or no database, 3 wrong PIN or locked out.`,
  usage: 'echo "$PIN" | dosis roll load FILE --staff ID --pin-stdin [--db FILE] [--return-pending] [--profile ID] [--time-zone ZONE] [--lang da|en]',
  allowPositionals: true,
  options: {
    db: { type: 'string', default: DEFAULT_DB },
    staff: { type: 'string' },
    'pin-stdin': { type: 'boolean', default: false },
    'return-pending': { type: 'boolean', default: false },
    profile: { type: 'string', default: DEFAULT_PROFILE_ID },
    'time-zone': TIME_ZONE_OPTION,
    lang: LANG_OPTION,
  },
  help: {
    db: "the robot's SQLite file (it must exist: dosis robot commission creates it)",
    staff: 'the staff id loading the roll',
    'pin-stdin': PIN_HELP,
    'return-pending': "take back the loaded roll's pouches not yet dispensed (without it such a load is refused)",
    profile: 'hardware profile id or path, for the slot count',
    'time-zone': TIME_ZONE_HELP,
    lang: LANG_HELP,
  },
  examples: ['read -rs PIN && echo "$PIN" | dosis roll load roll.json --staff anna --pin-stdin --db var/dosis-robot.db'],
} satisfies Spec;

const unloadSpec = {
  name: 'roll unload',
  summary: `Unloads the roll in the robot's database and prints the pouches that came back (a return receipt is stored).\n${RUNNING_NOTE}\nExit status: 0 unloaded, 1 refused (a dose is being dispensed or waits in the cup), 2 usage error, 3 wrong PIN or locked out.`,
  usage: 'echo "$PIN" | dosis roll unload --staff ID --pin-stdin [--db FILE] [--time-zone ZONE] [--lang da|en]',
  options: {
    db: { type: 'string', default: DEFAULT_DB },
    staff: { type: 'string' },
    'pin-stdin': { type: 'boolean', default: false },
    'time-zone': TIME_ZONE_OPTION,
    lang: LANG_OPTION,
  },
  help: { db: "the robot's SQLite file (it must exist)", staff: 'the staff id unloading the roll', 'pin-stdin': PIN_HELP, 'time-zone': TIME_ZONE_HELP, lang: LANG_HELP },
} satisfies Spec;

const addStaffSpec = {
  name: 'roll add-staff',
  summary: "Sets (or replaces) a staff member's PIN in the robot's database, scrypt-hashed; clears a lock-out.\nExit status: 0 set, 2 usage error (a PIN is 4 to 12 digits).",
  usage: 'echo "$PIN" | dosis roll add-staff --staff ID --pin-stdin [--db FILE] [--lang da|en]',
  options: {
    db: { type: 'string', default: DEFAULT_DB },
    staff: { type: 'string' },
    'pin-stdin': { type: 'boolean', default: false },
    lang: LANG_OPTION,
  },
  help: { db: "the robot's SQLite file (it must exist: dosis robot commission creates it)", staff: 'the staff id', 'pin-stdin': PIN_HELP, lang: LANG_HELP },
} satisfies Spec;

export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** The first line of `stream`, at most 1 KiB; stops reading there. */
export async function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      text = text.slice(0, nl);
      break;
    }
    if (text.length > 1024) break;
  }
  return text.replace(/\r$/, '').slice(0, 1024);
}

export function common(name: string, values: Record<string, unknown>): { db: string; staff: string } {
  const staff = values.staff as string | undefined;
  if (!staff) throw new UsageError(`${name}: --staff ID is required (see: dosis ${name} --help)`);
  if (values['pin-stdin'] !== true) throw new UsageError(`${name}: give the PIN on stdin with --pin-stdin; a PIN is never taken on the command line`);
  const db = (values.db as string | undefined) || DEFAULT_DB;
  return { db, staff };
}

/**
 * Opens the robot's database. Only setting up a robot may create it: a mistyped --db would otherwise make an empty
 * database and answer "wrong staff id or PIN".
 */
export function openStore(name: string, path: string, lang: Lang, opts: { create?: boolean } = {}): Store {
  if (path !== ':memory:' && !existsSync(path)) {
    if (!opts.create) throw new UsageError(`${name}: ${t(lang, 'pharmacy.cli.noDatabase', { file: path })}`);
    mkdirSync(dirname(path), { recursive: true });
  }
  const store = Store.open(path, { clock: new SystemClock() });
  migratePins(store.db);
  migrateReceipts(store.db);
  return store;
}

/** Checks the staff PIN; prints why not and returns false when it fails. */
export async function authenticate(name: string, store: Store, staff: string, io: CliIo, lang: Lang = 'en'): Promise<boolean> {
  const pin = await readLine(io.stdin ?? process.stdin);
  const r = verifyPin(store.db, staff, pin, new SystemClock().now());
  if (r.ok) return true;
  if (r.reason === 'locked') err(`dosis ${name}: ${t(lang, 'pharmacy.cli.locked', { until: iso(r.lockedUntilMs) })}`);
  else err(`dosis ${name}: ${t(lang, 'pharmacy.cli.wrongPin', { left: r.attemptsLeft })}`);
  return false;
}

export const toReceiptPouch = (d: { position: number; intakeAtMs: number; pillCount: number; label: string }): ReturnedPouch => ({
  position: d.position, intakeAtMs: d.intakeAtMs, pillCount: d.pillCount, label: d.label,
});

export async function loadMain(argv: string[], io: CliIo = {}, readFile: (file: string) => Buffer): Promise<number> {
  const parsed = parseCommand(loadSpec, argv);
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`roll load: expected one FILE, got ${positionals.length} (see: dosis roll load --help)`);
  const file = positionals[0] as string;
  const { db, staff } = common('roll load', values);
  const lang = langOf(values);
  const timeZone = timeZoneOf('roll load', values);
  let slotCount: number;
  try {
    slotCount = loadProfile(values.profile as string).slotCount;
  } catch (e) {
    throw new UsageError(`roll load: ${(e as Error).message}`);
  }
  const store = openStore('roll load', db, lang);
  try {
    if (!(await authenticate('roll load', store, staff, io, lang))) return EXIT.auth;
    const bound = store.commissioning();
    if (!bound) {
      err(`dosis roll load: ${t(lang, 'pharmacy.cli.notCommissioned')}`);
      return EXIT.invalid;
    }
    let bytes: Buffer;
    try {
      bytes = readFile(file);
    } catch (e) {
      if ((e as { code?: string }).code === 'DOSIS_ERR_NOT_A_FILE') out(`${file}: /: error not_a_file: ${(e as Error).message}`);
      else err(`dosis roll load: cannot read ${file}: ${(e as Error).message}`);
      return EXIT.usage;
    }
    const nowMs = new SystemClock().now();
    const result = validateManifest(bytes, {
      slotCount, nowMs, loaded: loadedRollOf(store, nowMs), citizenId: bound.citizenId, returnPending: values['return-pending'] === true,
    });
    const lines = result.problems.map((p) => `${file}: ${p.path}: ${p.severity} ${p.code}: ${p.message}`);
    if (!result.ok || !result.manifest) {
      const errors = result.problems.filter((p) => p.severity === 'error').length;
      store.log('roll_load_refused', null, { staffId: staff, problems: result.problems.length, via: 'cli' });
      lines.push(`${file}: ${t(lang, 'pharmacy.cli.invalid', { errors })}`);
      out(lines.join('\n'));
      return EXIT.invalid;
    }
    const roll = { rollId: result.manifest.rollId, citizenId: result.manifest.citizenId, pouches: result.pouches };
    const before = store.activeRoll()?.rollId;
    let returned;
    try {
      returned = store.loadRoll(roll, staff);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'DOSIS_ERR_INTERNAL';
      store.log('roll_load_refused', null, { staffId: staff, rollId: roll.rollId, code, via: 'cli' });
      lines.push(`${file}: ${t(lang, 'pharmacy.cli.refused', { code, message: (e as Error).message })}`);
      out(lines.join('\n'));
      return EXIT.invalid;
    }
    const first = roll.pouches[0]!;
    const last = roll.pouches[roll.pouches.length - 1]!;
    const receipt = saveReceipt(store.db, {
      kind: before ? 'replace' : 'load', rollId: roll.rollId, staffId: staff, atMs: new SystemClock().now(), timeZone: receiptZone(timeZone, store),
      returned: returned.map(toReceiptPouch), loaded: roll.pouches.map(toReceiptPouch),
    });
    lines.push(t(lang, 'pharmacy.cli.loaded', { rollId: roll.rollId, citizenId: roll.citizenId, count: roll.pouches.length, from: iso(first.intakeAtMs), to: iso(last.intakeAtMs), staffId: staff }));
    if (before) lines.push(t(lang, 'pharmacy.cli.replaced', { rollId: before, count: returned.length, labels: returned.map((d) => d.label).join(' ') }));
    lines.push(t(lang, 'pharmacy.cli.receipt', { receiptId: receipt.receiptId }));
    out(lines.join('\n'));
    return EXIT.ok;
  } finally {
    store.close();
  }
}

export async function unloadMain(argv: string[], io: CliIo = {}): Promise<number> {
  const parsed = parseCommand(unloadSpec, argv);
  if (!parsed) return EXIT.ok;
  const { db, staff } = common('roll unload', parsed.values);
  const lang = langOf(parsed.values);
  const timeZone = timeZoneOf('roll unload', parsed.values);
  const store = openStore('roll unload', db, lang);
  try {
    if (!(await authenticate('roll unload', store, staff, io, lang))) return EXIT.auth;
    const active = store.activeRoll();
    if (!active) {
      out(t(lang, 'pharmacy.cli.noRoll'));
      return EXIT.ok;
    }
    let rows;
    try {
      rows = store.unloadRoll(staff);
    } catch (e) {
      err(`dosis roll unload: refused: ${(e as { code?: string }).code ?? 'DOSIS_ERR_INTERNAL'}: ${(e as Error).message}`);
      return EXIT.invalid;
    }
    const returned = rows.map(toReceiptPouch);
    const receipt = saveReceipt(store.db, { rollId: active.rollId, staffId: staff, atMs: new SystemClock().now(), timeZone: receiptZone(timeZone, store), returned });
    const lines = rows.map((d) => t(lang, 'pharmacy.cli.returnedLine', { label: d.label, due: iso(d.intakeAtMs), pills: d.pillCount }));
    lines.push(t(lang, 'pharmacy.cli.unloaded', { rollId: active.rollId, staffId: staff, count: rows.length, receiptId: receipt.receiptId }));
    out(lines.join('\n'));
    return EXIT.ok;
  } finally {
    store.close();
  }
}

export async function addStaffMain(argv: string[], io: CliIo = {}): Promise<number> {
  const parsed = parseCommand(addStaffSpec, argv);
  if (!parsed) return EXIT.ok;
  const { db, staff } = common('roll add-staff', parsed.values);
  const store = openStore('roll add-staff', db, langOf(parsed.values));
  const pin = await readLine(io.stdin ?? process.stdin);
  try {
    try {
      setPin(store.db, staff, pin, new SystemClock().now());
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('DOSIS_ERR_PIN')) throw new UsageError(`roll add-staff: ${(e as Error).message}`);
      throw e;
    }
    store.log('staff_pin_set', null, { staffId: staff, via: 'cli' });
    out(t(langOf(parsed.values), 'pharmacy.cli.pinSet', { staffId: staff }));
    return EXIT.ok;
  } finally {
    store.close();
  }
}

// `dosis robot <subcommand>`: setting a robot up for its citizen, and the staff's care actions on the robot's database.
//
// `commission` is the one command that may create the database: on a new one the staff member's PIN (from stdin)
// becomes the first administrator's. Everything else needs the database to exist, a staff PIN, and for the
// binding itself an administrator. Every action is in the event log and, where pouches are concerned, on a receipt.

import { SystemClock } from '../../../protocol/src/clock.js';
import { t, type Lang } from '../../../protocol/src/i18n.js';
import { intOption, parseCommand, runSubcommand, UsageError, type CommandSpec, type Subcommands } from '../../../bin/cli-kit.js';
import {
  authenticate, common, DEFAULT_DB, err, EXIT, LANG_HELP, LANG_OPTION, langOf, openStore, out, readLine, TIME_ZONE_HELP, TIME_ZONE_OPTION, timeZoneOf, receiptZone,
  toReceiptPouch, type CliIo,
} from '../roll/load-cli.js';
import { setPin } from '../screens/pin.js';
import { saveReceipt, type ReceiptKind } from '../screens/receipts.js';
import type { DoseRow, Store } from '../store/store.js';

type Spec = CommandSpec<Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>;

const PIN_HELP = 'read the PIN from the first line of stdin (required; a PIN is never taken on the command line)';
const base = {
  db: { type: 'string', default: DEFAULT_DB },
  staff: { type: 'string' },
  'pin-stdin': { type: 'boolean', default: false },
  lang: LANG_OPTION,
} as const;
const baseHelp = { db: "the robot's SQLite file (it must exist)", staff: 'the staff id', 'pin-stdin': PIN_HELP, lang: LANG_HELP };
/** The commands that write a receipt: its times are in the robot's zone. */
const receiptOptions = { ...base, 'time-zone': TIME_ZONE_OPTION } as const;
const receiptHelp = { ...baseHelp, 'time-zone': TIME_ZONE_HELP };

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const codeOf = (e: unknown): string => (e as { code?: string }).code ?? 'DOSIS_ERR_INTERNAL';

/** A date-time option: ISO 8601 with Z or an offset (a bare local time would be read in the process's zone). */
function instant(name: string, value: unknown): number {
  const ms = typeof value === 'string' && /(Z|[+-]\d{2}:\d{2})$/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`--${name} must be an ISO 8601 date-time with Z or an offset, got ${JSON.stringify(value ?? null)}`);
  return ms;
}

/** Opens the existing database and checks the staff PIN (and, when asked, that the staff member is an administrator). */
async function session(name: string, values: Record<string, unknown>, io: CliIo, admin = false): Promise<{ store: Store; staff: string; lang: Lang; timeZone: string } | number> {
  const { db, staff } = common(name, values);
  const lang = langOf(values);
  const timeZone = timeZoneOf(name, values);
  const store = openStore(name, db, lang);
  if (!(await authenticate(name, store, staff, io, lang))) {
    store.close();
    return EXIT.auth;
  }
  if (admin && !store.isAdmin(staff)) {
    err(`dosis ${name}: ${t(lang, 'pharmacy.cli.notAdmin', { staffId: staff })}`);
    store.close();
    return EXIT.auth;
  }
  return { store, staff, lang, timeZone: receiptZone(timeZone, store) };
}

type Session = { store: Store; staff: string; timeZone: string };

function receipt({ store, staff, timeZone }: Session, kind: ReceiptKind, rows: readonly DoseRow[], pause?: { fromMs: number; untilMs: number }): string {
  const r = saveReceipt(store.db, {
    kind, rollId: store.activeRoll()?.rollId ?? rows[0]?.rollId ?? null, staffId: staff, atMs: new SystemClock().now(), timeZone,
    returned: rows.map(toReceiptPouch), ...(pause ? { pause } : {}),
  });
  return r.receiptId;
}

const commissionSpec = {
  name: 'robot commission',
  summary:
    "Binds the robot to its citizen. On a new database (created here, the only command that does) the staff member's PIN\nfrom stdin becomes the first administrator's; on an existing one an administrator's PIN is needed. A robot bound to\nanother citizen is refused: decommission it first.\nExit status: 0 bound (or bound already to that citizen), 1 bound to another citizen, 2 usage error, 3 wrong PIN or not an administrator.",
  usage: 'echo "$PIN" | dosis robot commission --citizen ID --staff ID --pin-stdin [--db FILE] [--lang da|en]',
  options: { ...base, citizen: { type: 'string' } },
  help: { ...baseHelp, db: "the robot's SQLite file (created with its directory if missing)", citizen: "the citizen's pseudonymous id, as in the roll manifests" },
} satisfies Spec;

async function commissionMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(commissionSpec, argv);
  if (!parsed) return EXIT.ok;
  const v = parsed.values;
  const citizen = v.citizen as string | undefined;
  if (!citizen || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(citizen)) throw new UsageError('robot commission: --citizen ID is required: letters, digits, _ and -, at most 64');
  const { db, staff } = common('robot commission', v);
  const lang = langOf(v);
  const store = openStore('robot commission', db, lang, { create: true });
  try {
    const fresh = store.db.prepare('SELECT 1 FROM staff_pin LIMIT 1').get() === undefined;
    if (fresh) {
      // A new robot: the one setting it up becomes its first administrator.
      const pin = await readLine(io.stdin ?? process.stdin);
      try {
        setPin(store.db, staff, pin, new SystemClock().now());
      } catch (e) {
        if (codeOf(e).startsWith('DOSIS_ERR_PIN')) throw new UsageError(`robot commission: ${(e as Error).message}`);
        throw e;
      }
      store.setAdmin(staff, true);
    } else {
      if (!(await authenticate('robot commission', store, staff, io, lang))) return EXIT.auth;
      if (!store.isAdmin(staff)) {
        err(`dosis robot commission: ${t(lang, 'pharmacy.cli.notAdmin', { staffId: staff })}`);
        return EXIT.auth;
      }
    }
    const before = store.commissioning();
    if (before && before.citizenId !== citizen) {
      store.log('robot_commission_refused', null, { staffId: staff, via: 'cli' });
      err(`dosis robot commission: ${t(lang, 'pharmacy.cli.commissionedOther')}`);
      return EXIT.invalid;
    }
    if (before) {
      out(t(lang, 'pharmacy.cli.alreadyCommissioned', { citizenId: citizen }));
      return EXIT.ok;
    }
    store.commission(citizen, staff);
    out(t(lang, 'pharmacy.cli.commissioned', { citizenId: citizen, staffId: staff }));
    return EXIT.ok;
  } finally {
    store.close();
  }
}

const decommissionSpec = {
  name: 'robot decommission',
  summary: 'Ends the robot\'s binding to its citizen (an administrator\'s PIN). Refused while a roll is loaded: unload it first,\nwith its receipt. Audited in the event log.\nExit status: 0 done, 1 refused (a roll is loaded, or not commissioned), 2 usage error or no database, 3 wrong PIN or not an administrator.',
  usage: 'echo "$PIN" | dosis robot decommission --staff ID --pin-stdin [--db FILE] [--lang da|en]',
  options: base,
  help: baseHelp,
} satisfies Spec;

async function decommissionMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(decommissionSpec, argv);
  if (!parsed) return EXIT.ok;
  const s = await session('robot decommission', parsed.values, io, true);
  if (typeof s === 'number') return s;
  const { store, staff, lang } = s;
  try {
    const active = store.activeRoll();
    if (active) {
      err(`dosis robot decommission: ${t(lang, 'pharmacy.cli.rollLoaded', { rollId: active.rollId })}`);
      return EXIT.invalid;
    }
    let bound;
    try {
      bound = store.decommission(staff);
    } catch (e) {
      err(`dosis robot decommission: ${codeOf(e) === 'DOSIS_ERR_NOT_COMMISSIONED' ? t(lang, 'pharmacy.cli.notCommissioned') : (e as Error).message}`);
      return EXIT.invalid;
    }
    out(t(lang, 'pharmacy.cli.decommissioned', { citizenId: bound.citizenId, staffId: staff }));
    return EXIT.ok;
  } finally {
    store.close();
  }
}

const pauseSpec = {
  name: 'robot pause',
  summary:
    "Pauses the robot (a hospital stay) from --from to the expected end --until: the doses due in it are suspended (not\nreminded, not missed, not dispensed) and the alarm centre is told. A running robot follows at its next look at the database.\nExit status: 0 paused, 1 refused, 2 usage error or no database, 3 wrong PIN.",
  usage: 'echo "$PIN" | dosis robot pause --from ISO --until ISO [--reason WORD] --staff ID --pin-stdin [--db FILE] [--time-zone ZONE]',
  options: { ...receiptOptions, from: { type: 'string' }, until: { type: 'string' }, reason: { type: 'string', default: 'hospital' } },
  help: { ...receiptHelp, from: 'start, ISO 8601 with Z or an offset', until: 'expected end, ISO 8601 with Z or an offset', reason: "a short word kept with the pause on the robot (the pharmacy screen's list); never logged or sent to the centre" },
} satisfies Spec;

async function pauseMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(pauseSpec, argv);
  if (!parsed) return EXIT.ok;
  const v = parsed.values;
  const fromMs = instant('from', v.from);
  const untilMs = instant('until', v.until);
  const reason = String(v.reason).slice(0, 40);
  const s = await session('robot pause', v, io);
  if (typeof s === 'number') return s;
  const { store, staff, lang } = s;
  try {
    let r;
    try {
      r = store.pause({ fromMs, untilMs, reason, staffId: staff });
    } catch (e) {
      err(`dosis robot pause: ${codeOf(e)}: ${(e as Error).message}`);
      return EXIT.invalid;
    }
    const id = receipt(s, 'pause', r.suspended, { fromMs, untilMs });
    out(`${t(lang, 'pharmacy.cli.paused', { from: iso(fromMs), until: iso(untilMs), count: r.suspended.length })}\n${t(lang, 'pharmacy.cli.receipt', { receiptId: id })}`);
    return EXIT.ok;
  } finally {
    store.close();
  }
}

const resumeSpec = {
  name: 'robot resume',
  summary: 'Ends the pause now: its doses still to come are dispensed again; the alarm centre is told.\nExit status: 0 ended, 1 not paused, 2 usage error or no database, 3 wrong PIN.',
  usage: 'echo "$PIN" | dosis robot resume --staff ID --pin-stdin [--db FILE] [--time-zone ZONE]',
  options: receiptOptions,
  help: receiptHelp,
} satisfies Spec;

async function resumeMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(resumeSpec, argv);
  if (!parsed) return EXIT.ok;
  const s = await session('robot resume', parsed.values, io);
  if (typeof s === 'number') return s;
  const { store, staff, lang } = s;
  try {
    let r;
    try {
      r = store.endPause(staff);
    } catch (e) {
      err(`dosis robot resume: ${codeOf(e)}: ${(e as Error).message}`);
      return EXIT.invalid;
    }
    const id = receipt(s, 'resume', r.resumed, { fromMs: r.pause.fromMs, untilMs: r.pause.untilMs });
    out(`${t(lang, 'pharmacy.cli.resumed', { count: r.resumed.length })}\n${t(lang, 'pharmacy.cli.receipt', { receiptId: id })}`);
    return EXIT.ok;
  } finally {
    store.close();
  }
}

const travelSpec = {
  name: 'robot travel',
  summary: 'Releases the next N doses ahead of time for a trip: their pouches are cut, in order, into a travel pack; none of\nthem is reminded or alarmed. The receipt lists them.\nExit status: 0 released, 1 refused (fewer doses left), 2 usage error or no database, 3 wrong PIN.',
  usage: 'echo "$PIN" | dosis robot travel --doses N --staff ID --pin-stdin [--db FILE] [--time-zone ZONE]',
  options: { ...receiptOptions, doses: { type: 'string' } },
  help: { ...receiptHelp, doses: 'how many doses to release, the next ones in order' },
} satisfies Spec;

async function travelMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(travelSpec, argv);
  if (!parsed) return EXIT.ok;
  const v = parsed.values;
  if (v.doses === undefined) throw new UsageError('robot travel: --doses N is required');
  const count = intOption('doses', v.doses as string, 0, 1, 999);
  const s = await session('robot travel', v, io);
  if (typeof s === 'number') return s;
  const { store, staff, lang } = s;
  try {
    let rows;
    try {
      rows = store.releaseForTravel(count, staff);
    } catch (e) {
      err(`dosis robot travel: ${codeOf(e)}: ${(e as Error).message}`);
      return EXIT.invalid;
    }
    const id = receipt(s, 'travel', rows);
    out(`${t(lang, 'pharmacy.cli.travel', { count: rows.length, labels: rows.map((d) => d.label).join(' ') })}\n${t(lang, 'pharmacy.cli.receipt', { receiptId: id })}`);
    return EXIT.ok;
  } finally {
    store.close();
  }
}

const withdrawSpec = {
  name: 'robot withdraw',
  summary: "Withdraws doses on a prescription change: every dose from --from on, or the pouches named with --dose (repeatable,\nthe label printed on the pouch). A withdrawn dose is never dispensed; the receipt lists them.\nExit status: 0 withdrawn, 1 refused, 2 usage error or no database, 3 wrong PIN.",
  usage: 'echo "$PIN" | dosis robot withdraw (--from ISO | --dose LABEL ...) --staff ID --pin-stdin [--db FILE] [--time-zone ZONE]',
  options: { ...receiptOptions, from: { type: 'string' }, dose: { type: 'string', multiple: true } },
  help: { ...receiptHelp, from: 'withdraw every dose due at or after this time, ISO 8601 with Z or an offset', dose: 'a pouch label, e.g. R27W18A-012 (repeatable)' },
} satisfies CommandSpec<Record<string, { type: 'string' | 'boolean'; default?: string | boolean; multiple?: boolean }>>;

async function withdrawMain(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(withdrawSpec, argv);
  if (!parsed) return EXIT.ok;
  const v = parsed.values as Record<string, unknown>;
  const doses = (v.dose as string[] | undefined) ?? [];
  if ((v.from === undefined) === (doses.length === 0)) throw new UsageError('robot withdraw: give either --from or one or more --dose');
  const which = v.from !== undefined ? { fromMs: instant('from', v.from) } : { doseIds: doses };
  const s = await session('robot withdraw', v, io);
  if (typeof s === 'number') return s;
  const { store, staff, lang } = s;
  try {
    let rows;
    try {
      rows = store.withdraw(which, staff);
    } catch (e) {
      err(`dosis robot withdraw: ${codeOf(e)}: ${(e as Error).message}`);
      return EXIT.invalid;
    }
    const id = receipt(s, 'withdraw', rows);
    out(`${t(lang, 'pharmacy.cli.withdrawn', { count: rows.length, labels: rows.map((d) => d.label).join(' ') })}\n${t(lang, 'pharmacy.cli.receipt', { receiptId: id })}`);
    return EXIT.ok;
  } finally {
    store.close();
  }
}

/** One entry per subcommand; `dosis robot --help` lists them in this order. */
const SUBCOMMANDS: Subcommands<CliIo> = {
  commission: { summary: 'bind the robot to its citizen (creates the database on a new robot)', run: commissionMain },
  decommission: { summary: 'end the binding (an administrator; every roll out first)', run: decommissionMain },
  pause: { summary: 'pause dispensing for a hospital stay; the alarm centre is told', run: pauseMain },
  resume: { summary: 'end the pause now', run: resumeMain },
  travel: { summary: 'release the next N doses ahead of time for a travel pack', run: travelMain },
  withdraw: { summary: 'withdraw doses on a prescription change, from a time or one by one', run: withdrawMain },
};

/** `io` lets tests give --pin-stdin its stdin; the dispatcher passes argv only. */
export function main(argv: string[], io: CliIo = {}): Promise<number> {
  return runSubcommand('robot', `The robot's set-up and the staff's care actions, on its database file.`, SUBCOMMANDS, argv, io);
}

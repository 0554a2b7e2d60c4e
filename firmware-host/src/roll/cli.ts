// `dosis roll <subcommand>`: roll manifests from the command line (validate, the JSON Schema, load and unload behind a staff PIN).

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { SystemClock } from '../../../protocol/src/clock.js';
import { DEFAULT_PROFILE_ID, loadProfile } from '../../../hardware/src/profile.js';
import { intOption, parseCommand, runSubcommand, UsageError, type CommandSpec, type Subcommands } from '../../../bin/cli-kit.js';
import { MANIFEST_JSON_SCHEMA } from './manifest-schema.js';
import { DEFAULT_MAX_PILLS_PER_POUCH, MAX_MANIFEST_BYTES, validateManifest } from './validate.js';
import { addStaffMain, LANG_HELP, LANG_OPTION, langOf, loadMain, unloadMain, type CliIo } from './load-cli.js';
import { hasMessage, t } from '../../../protocol/src/i18n.js';

/** One entry per subcommand; `dosis roll --help` lists them in this order. */
const SUBCOMMANDS: Subcommands<CliIo> = {
  validate: { summary: 'check a roll manifest and print every problem, one line each', run: validateMain },
  schema: { summary: 'print the manifest format as a JSON Schema document', run: schemaMain },
  load: { summary: "check a roll and load it into the robot's database (staff PIN on stdin)", run: (argv, io) => loadMain(argv, io, readCapped) },
  unload: { summary: "unload the roll in the robot's database and list the pouches that came back", run: unloadMain },
  'add-staff': { summary: "set a staff member's PIN (read from stdin, stored scrypt-hashed)", run: addStaffMain },
};

/** `io` lets tests give --pin-stdin its stdin; the dispatcher passes argv only. */
export function main(argv: string[], io: CliIo = {}): Promise<number> {
  return runSubcommand('roll', `Roll manifests: the pharmacy's rolls of dose pouches.`, SUBCOMMANDS, argv, io);
}

const validateSpec = {
  name: 'roll validate',
  summary: 'Checks a roll manifest and prints every problem as `FILE: <path>: <severity> <code>: <message>`, then a summary.\nExit status: 0 valid (warnings allowed), 1 invalid, 2 usage error or unreadable file.',
  usage: 'dosis roll validate FILE [--citizen ID] [--slots N | --profile ID] [--now ISO] [--json] [--lang da|en]',
  allowPositionals: true,
  options: {
    citizen: { type: 'string' },
    slots: { type: 'string' },
    profile: { type: 'string', default: DEFAULT_PROFILE_ID },
    'max-pills': { type: 'string', default: String(DEFAULT_MAX_PILLS_PER_POUCH) },
    now: { type: 'string' },
    json: { type: 'boolean', default: false },
    lang: LANG_OPTION,
  },
  help: {
    citizen: "the pseudonymous id of the citizen this robot serves; unchecked if not given",
    slots: "carousel slots (default: the profile's slotCount)",
    profile: 'hardware profile id or path, for the slot count',
    'max-pills': 'more pills in one pouch than this is implausible',
    now: 'the time to check against, ISO 8601 with Z or an offset (default: the system clock)',
    json: 'print one JSON object instead of lines',
    lang: LANG_HELP,
  },
  examples: [
    'dosis roll validate firmware-host/examples/roll-2week.json --now 2027-01-01T00:00:00Z',
    'dosis roll validate roll.json --citizen C7F3A9B2 --slots 56 --json',
  ],
} satisfies CommandSpec<Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>;

const kindOf = (st: Stats): string =>
  st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';

export class NotAFileError extends Error {
  readonly code = 'DOSIS_ERR_NOT_A_FILE';
  constructor(file: string, kind: string) {
    super(`${file} is ${kind}, not a regular file; nothing was read`);
  }
}

/**
 * Reads at most one byte past the cap, so a huge file is never read whole; the validator reports it too large.
 * Only a regular file is read: a FIFO with no writer would block the open for ever, a device never end. The path is
 * checked before it is opened (non-blocking) and the open file again, in case the path was swapped in between.
 */
export function readCapped(file: string): Buffer {
  const before = statSync(file);
  if (!before.isFile()) throw new NotAFileError(file, kindOf(before));
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotAFileError(file, kindOf(st));
    const buf = Buffer.alloc(MAX_MANIFEST_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0 || length + n >= buf.length) return buf.subarray(0, length + n);
      length += n;
    }
  } finally {
    closeSync(fd);
  }
}

function nowOption(value: string | undefined): number {
  if (value === undefined) return new SystemClock().now();
  // Without a zone a date-time would be read in the process's local zone: refuse the guess.
  const ms = /(Z|[+-]\d{2}:\d{2})$/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`roll validate: --now must be an ISO 8601 date-time with Z or an offset, got ${JSON.stringify(value)}`);
  return ms;
}

async function validateMain(argv: string[]): Promise<number> {
  const parsed = parseCommand(validateSpec, argv);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`roll validate: expected one FILE, got ${positionals.length} (see: dosis roll validate --help)`);
  const file = positionals[0] as string;
  const lang = langOf(values);
  const nowMs = nowOption(values.now as string | undefined);
  const maxPills = intOption('max-pills', values['max-pills'] as string, DEFAULT_MAX_PILLS_PER_POUCH, 1, 255);
  let slotCount: number;
  if (values.slots !== undefined) {
    slotCount = intOption('slots', values.slots as string, 0, 1, 256);
  } else {
    try {
      slotCount = loadProfile(values.profile as string).slotCount;
    } catch (err) {
      throw new UsageError(`roll validate: ${(err as Error).message}`);
    }
  }

  let bytes: Buffer;
  try {
    bytes = readCapped(file);
  } catch (err) {
    if (err instanceof NotAFileError) {
      process.stdout.write(values.json ? `${JSON.stringify({ file, ok: false, errors: 1, warnings: 0, problems: [{ path: '/', code: 'not_a_file', severity: 'error', message: err.message }], pouches: [] })}\n` : `${file}: /: error not_a_file: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`dosis roll validate: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }

  const citizenId = values.citizen as string | undefined;
  const result = validateManifest(bytes, { ...(citizenId !== undefined ? { citizenId } : {}), slotCount, nowMs, maxPillsPerPouch: maxPills });
  const errors = result.problems.filter((p) => p.severity === 'error').length;
  const warnings = result.problems.length - errors;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ file, ok: result.ok, errors, warnings, problems: result.problems, pouches: result.pouches })}\n`);
  } else {
    // In Danish the problem's name comes first in Danish; the detail (positions, times, lines) is the validator's.
    const lines = result.problems.map((p) =>
      lang === 'en'
        ? `${file}: ${p.path}: ${p.severity} ${p.code}: ${p.message}`
        : `${file}: ${p.path}: ${t(lang, `roll.severity.${p.severity}`)} ${p.code}: ${hasMessage(`roll.problem.${p.code}`) ? `${t(lang, `roll.problem.${p.code}`)}: ` : ''}${p.message}`,
    );
    const first = result.pouches[0];
    const last = result.pouches[result.pouches.length - 1];
    const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
    const span = first && last ? t(lang, 'roll.cli.span', { count: result.pouches.length, from: iso(first.intakeAtMs), to: iso(last.intakeAtMs) }) : '';
    lines.push(`${file}: ${t(lang, result.ok ? 'roll.cli.valid' : 'roll.cli.invalid', { span, errors, warnings })}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return result.ok ? 0 : 1;
}

const schemaSpec = {
  name: 'roll schema',
  summary: 'Prints the roll manifest format as a JSON Schema (draft 2020-12) document.',
  usage: 'dosis roll schema',
  options: {},
  help: {},
} satisfies CommandSpec<Record<string, never>>;

async function schemaMain(argv: string[]): Promise<number> {
  if (!parseCommand(schemaSpec, argv)) return 0;
  process.stdout.write(`${JSON.stringify(MANIFEST_JSON_SCHEMA, null, 2)}\n`);
  return 0;
}

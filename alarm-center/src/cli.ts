// `dosis alarm-center`: runs the alarm centre, or sets it up (register-device, add-operator).
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { intOption, parseCommand, UsageError } from '../../bin/cli-kit.js';
import { ROLES, type Role } from './store/accounts.js';
import { AlarmError } from './errors.js';
import { checkConfig, ConfigError, LOG_LEVELS, readConfigFile, type ConfigFile } from './config.js';
import { addOperator, registerDevice, serveUntilSignal } from './server.js';
import { isLang, t, type Lang } from '../../protocol/src/i18n.js';

/** What the commands print is in the shared catalogue; English unless --lang da, as scripts may read it. */
const LANG_OPTION = { type: 'string', default: 'en' } as const;
const LANG_HELP = 'language of what is printed: da or en';
function langOf(v: string | undefined): Lang {
  if (!isLang(v)) throw new UsageError(`--lang must be da or en, got ${JSON.stringify(v)}`);
  return v;
}

const DB = 'var/alarm-center.db';

const serveSpec = {
  name: 'alarm-center',
  summary: 'dosis alarm-center — the alarm centre service (device API, operators\' dashboard, /docs)\n\nSet-up commands: dosis alarm-center register-device --help, dosis alarm-center add-operator --help\nFlags override the config file; every setting is checked before the centre starts.',
  usage: 'dosis alarm-center [--port 8470] [--host 127.0.0.1] [--db var/alarm-center.db] [--config <file.json>] [--rate-limit <n>] [--trust-proxy <addresses>] ...',
  options: {
    port: { type: 'string', default: '8470' },
    host: { type: 'string', default: '127.0.0.1' },
    db: { type: 'string', default: DB },
    config: { type: 'string' },
    'rate-limit': { type: 'string' },
    'renotify-ms': { type: 'string' },
    'escalate-after-ms': { type: 'string' },
    'remind-ms': { type: 'string' },
    'max-silence-days': { type: 'string' },
    'trust-proxy': { type: 'string' },
    'time-zone': { type: 'string' },
    'log-level': { type: 'string' },
    lang: LANG_OPTION,
  },
  help: {
    port: 'TCP port (0 picks a free one)',
    host: 'address to listen on',
    db: 'SQLite database file (created and migrated on start)',
    config: 'JSON file of settings (keys as in the README: rateLimitPerMinute, escalateAfterMs, logLevel, ...)',
    'rate-limit': 'requests per minute per address and per device; 0 turns the limit off (default 1200)',
    'renotify-ms': 'an unclaimed alert sounds again after this long (default 60000)',
    'escalate-after-ms': 'an unclaimed alert goes to a supervisor and rises after this long (default 180000)',
    'remind-ms': 'a claimed alert reminds after this long (default 300000)',
    'max-silence-days': 'the longest a silence may run (default 90)',
    'trust-proxy': 'behind a reverse proxy: "true" or the proxy addresses/CIDRs whose X-Forwarded-For/-Proto to believe',
    'time-zone': 'IANA time zone for dates on the dashboard and report months (default Europe/Copenhagen)',
    'log-level': `one of ${LOG_LEVELS.join(', ')} (default info)`,
    lang: LANG_HELP,
  },
  examples: [
    'dosis alarm-center --port 8470 --db var/alarm-center.db',
    'dosis alarm-center --host 127.0.0.1 --trust-proxy 127.0.0.1 --config /etc/dosis/alarm-center.json',
  ],
} as const;

const registerSpec = {
  name: 'alarm-center register-device',
  summary: 'Register a robot and print its secret: it is shown this once and cannot be read back.',
  usage: 'dosis alarm-center register-device --id <device-id> [--district <name>] [--db var/alarm-center.db]',
  options: { id: { type: 'string' }, district: { type: 'string' }, db: { type: 'string', default: DB }, lang: LANG_OPTION },
  help: { id: 'pseudonymous device id (1-64 of A-Z a-z 0-9 _ -)', district: 'the district the robot serves (for the reports)', db: 'SQLite database file', lang: LANG_HELP },
} as const;

const operatorSpec = {
  name: 'alarm-center add-operator',
  summary: 'Add an operator account. The password is read from standard input (typed without echo on a terminal, or the\nfirst line of a pipe), never from the command line where ps and shell history would keep it.',
  usage: 'dosis alarm-center add-operator --username <name> --role operator|supervisor|admin [--generate-password] [--db var/alarm-center.db] < password',
  options: { username: { type: 'string' }, role: { type: 'string', default: 'operator' }, 'generate-password': { type: 'boolean' }, db: { type: 'string', default: DB }, lang: LANG_OPTION },
  help: {
    username: 'login name (2-40 of a-z 0-9 . _ -)',
    role: `one of ${ROLES.join(', ')}`,
    'generate-password': 'make up a random password and print it once, instead of reading one',
    db: 'SQLite database file',
    lang: LANG_HELP,
  },
  examples: ['printf "%s\\n" "$PASSWORD" | dosis alarm-center add-operator --username olga --role operator'],
} as const;

async function ensureDir(path: string) {
  const { mkdirSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
}

type Input = Readable & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };

/** The first line of `input`; on a terminal, typed without echo after a prompt on stderr. */
export async function readPassword(input: Input, lang: Lang = 'en'): Promise<string> {
  const tty = input.isTTY === true && typeof input.setRawMode === 'function';
  if (tty) {
    process.stderr.write(t(lang, 'centre.cli.passwordPrompt'));
    input.setRawMode!(true);
  }
  let text = '';
  try {
    for await (const chunk of input) {
      for (const ch of String(chunk)) {
        if (ch === '\n' || ch === '\r') return text;
        if (tty && ch === '\u0003') throw new UsageError('add-operator: cancelled');
        if (tty && (ch === '\u007f' || ch === '\b')) text = text.slice(0, -1);
        else text += ch;
      }
    }
    return text;
  } finally {
    if (tty) {
      input.setRawMode!(false);
      input.pause();
      process.stderr.write('\n');
    }
  }
}

/** Settings from the config file, then from flags; each checked. */
function serveConfig(values: Record<string, string | undefined>): ConfigFile {
  const fromFile = values.config ? readConfigFile(values.config) : {};
  const int = (flag: string) => {
    const v = values[flag];
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const flags: Record<string, unknown> = {
    rateLimitPerMinute: int('rate-limit'),
    renotifyMs: int('renotify-ms'),
    escalateAfterMs: int('escalate-after-ms'),
    remindMs: int('remind-ms'),
    maxSilenceDays: int('max-silence-days'),
    trustProxy: values['trust-proxy'] === undefined ? undefined : values['trust-proxy'] === 'true' ? true : values['trust-proxy'] === 'false' ? false : values['trust-proxy'],
    timeZone: values['time-zone'],
    logLevel: values['log-level'],
  };
  for (const k of Object.keys(flags)) if (flags[k] === undefined) delete flags[k];
  return checkConfig({ ...fromFile, ...flags }, 'settings');
}

export async function main(argv: string[], io: { stdin: Input } = { stdin: process.stdin }): Promise<number> {
  try {
    if (argv[0] === 'register-device') {
      const args = parseCommand(registerSpec, argv.slice(1));
      if (!args) return 0;
      if (!args.values.id) throw new UsageError('register-device: --id is required');
      const lang = langOf(args.values.lang);
      await ensureDir(args.values.db);
      const secret = registerDevice(args.values.db, args.values.id, { district: args.values.district });
      process.stdout.write(`${t(lang, 'centre.cli.registered', { id: args.values.id, secret })}\n`);
      return 0;
    }
    if (argv[0] === 'add-operator') {
      const args = parseCommand(operatorSpec, argv.slice(1));
      if (!args) return 0;
      const { username, role, db } = args.values;
      if (!username) throw new UsageError('add-operator: --username is required');
      if (!ROLES.includes(role as Role)) throw new UsageError(`add-operator: --role must be one of ${ROLES.join(', ')}`);
      const lang = langOf(args.values.lang);
      const generated = args.values['generate-password'] === true;
      const password = generated ? randomBytes(12).toString('base64url') : await readPassword(io.stdin, lang);
      if (!generated && password.length === 0) throw new UsageError('add-operator: no password on standard input (or use --generate-password)');
      await ensureDir(db);
      addOperator(db, username, role as Role, password);
      process.stdout.write(`${t(lang, 'centre.cli.operatorAdded', { username, role })}\n${generated ? `${t(lang, 'centre.cli.generatedPassword', { password })}\n` : ''}`);
      return 0;
    }
    const args = parseCommand(serveSpec, argv);
    if (!args) return 0;
    const port = intOption('port', args.values.port, 8470, 0, 65535);
    const lang = langOf(args.values.lang);
    const config = serveConfig(args.values);
    await ensureDir(args.values.db);
    const running = await serveUntilSignal({ port, host: args.values.host, dbPath: args.values.db, config });
    process.stdout.write(`${t(lang, 'centre.cli.listening', { url: running.url })}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof AlarmError) {
      process.stderr.write(`${err.message}\n`);
      return err instanceof AlarmError ? 1 : 2;
    }
    throw err;
  }
}

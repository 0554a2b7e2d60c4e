// `dosis alarm-center`: runs the alarm centre, or sets it up (register-device, add-operator).
import { randomBytes } from 'node:crypto';
import { intOption, parseCommand, UsageError } from '../../bin/cli-kit.js';
import { ROLES, type Role } from './store/accounts.js';
import { AlarmError } from './errors.js';
import { addOperator, registerDevice, serveUntilSignal } from './server.js';

const DB = 'var/alarm-center.db';

const serveSpec = {
  name: 'alarm-center',
  summary: 'dosis alarm-center — the alarm centre service (device API, operators\' dashboard, /docs)\n\nSet-up commands: dosis alarm-center register-device --help, dosis alarm-center add-operator --help',
  usage: 'dosis alarm-center [--port 8470] [--host 127.0.0.1] [--db var/alarm-center.db]',
  options: { port: { type: 'string', default: '8470' }, host: { type: 'string', default: '127.0.0.1' }, db: { type: 'string', default: DB } },
  help: { port: 'TCP port (0 picks a free one)', host: 'address to listen on', db: 'SQLite database file (created and migrated on start)' },
  examples: ['dosis alarm-center --port 8470 --db var/alarm-center.db'],
} as const;

const registerSpec = {
  name: 'alarm-center register-device',
  summary: 'Register a robot and print its secret: it is shown this once and cannot be read back.',
  usage: 'dosis alarm-center register-device --id <device-id> [--db var/alarm-center.db]',
  options: { id: { type: 'string' }, db: { type: 'string', default: DB } },
  help: { id: 'pseudonymous device id (1-64 of A-Z a-z 0-9 _ -)', db: 'SQLite database file' },
} as const;

const operatorSpec = {
  name: 'alarm-center add-operator',
  summary: 'Add an operator account; without --password a random one is generated and printed.',
  usage: 'dosis alarm-center add-operator --username <name> --role operator|supervisor|admin [--password <pw>] [--db var/alarm-center.db]',
  options: { username: { type: 'string' }, role: { type: 'string', default: 'operator' }, password: { type: 'string' }, db: { type: 'string', default: DB } },
  help: { username: 'login name (2-40 of a-z 0-9 . _ -)', role: `one of ${ROLES.join(', ')}`, password: 'at least 8 characters', db: 'SQLite database file' },
} as const;

async function ensureDir(path: string) {
  const { mkdirSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
}

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'register-device') {
      const args = parseCommand(registerSpec, argv.slice(1));
      if (!args) return 0;
      if (!args.values.id) throw new UsageError('register-device: --id is required');
      await ensureDir(args.values.db);
      const secret = registerDevice(args.values.db, args.values.id);
      process.stdout.write(`device ${args.values.id} registered\nsecret (shown once): ${secret}\n`);
      return 0;
    }
    if (argv[0] === 'add-operator') {
      const args = parseCommand(operatorSpec, argv.slice(1));
      if (!args) return 0;
      const { username, role, db } = args.values;
      if (!username) throw new UsageError('add-operator: --username is required');
      if (!ROLES.includes(role as Role)) throw new UsageError(`add-operator: --role must be one of ${ROLES.join(', ')}`);
      const password = args.values.password ?? randomBytes(12).toString('base64url');
      await ensureDir(db);
      addOperator(db, username, role as Role, password);
      process.stdout.write(`operator ${username} (${role}) added${args.values.password ? '' : `\npassword: ${password}`}\n`);
      return 0;
    }
    const args = parseCommand(serveSpec, argv);
    if (!args) return 0;
    const port = intOption('port', args.values.port, 8470, 0, 65535);
    await ensureDir(args.values.db);
    const running = await serveUntilSignal({ port, host: args.values.host, dbPath: args.values.db });
    process.stdout.write(`alarm centre listening on ${running.url}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof AlarmError) {
      process.stderr.write(`${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    throw err;
  }
}

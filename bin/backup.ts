// `dosis backup`: a consistent copy of a live robot or alarm-centre database, made with SQLite's online backup.
//
// The online backup copies the database page by page while the service keeps writing; when another connection
// changes the source between two steps SQLite starts the copy again, so every finished copy is one committed state.
// Steps grow after each restart, so a busy database is still copied: at worst in one step, during which writers wait
// only as long as a WAL reader makes them (not at all).
import { existsSync, linkSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { parseCommand } from './cli-kit.js';
import { secretKeyPath } from '../alarm-center/src/store/accounts.js';

export class BackupError extends Error {
  constructor(
    readonly code: 'DOSIS_ERR_BACKUP_SOURCE' | 'DOSIS_ERR_BACKUP_TARGET' | 'DOSIS_ERR_BACKUP_CHECK',
    message: string,
  ) {
    super(message);
  }
}

export type BackupProgress = { totalPages: number; remainingPages: number; restarts: number };
export type BackupOptions = {
  /** Pages copied per step at first (1024 by default); doubled after each restart. */
  stepPages?: number;
  onProgress?: (p: BackupProgress) => void;
};
/** `alarm-center`: a centre's database, whose device secrets need the key kept apart from it. */
export type DatabaseKind = 'robot' | 'alarm-center' | 'other';
export type BackupResult = { out: string; bytes: number; pages: number; restarts: number; kind: DatabaseKind; keyFile?: string };

function kindOf(db: Database.Database): DatabaseKind {
  const has = (table: string, column: string) => db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column) !== undefined;
  if (has('devices', 'secret_enc')) return 'alarm-center';
  if (has('doses', 'dose_id') || has('intents', 'command_id')) return 'robot';
  return 'other';
}

export async function backupDatabase(src: string, out: string, opts: BackupOptions = {}): Promise<BackupResult> {
  if (!existsSync(src) || !statSync(src).isFile()) throw new BackupError('DOSIS_ERR_BACKUP_SOURCE', `no database at ${src}`);
  if (existsSync(out)) throw new BackupError('DOSIS_ERR_BACKUP_TARGET', `${out} exists: a backup never overwrites a file; choose a new name`);
  let db: Database.Database;
  let kind: DatabaseKind;
  try {
    db = new Database(src, { fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    kind = kindOf(db);
  } catch (err) {
    throw new BackupError('DOSIS_ERR_BACKUP_SOURCE', `${src} is not a readable SQLite database: ${(err as Error).message}`);
  }
  // Copied under another name and linked into place when whole and checked: an interrupted backup leaves no file
  // that looks like a backup, and a file created at `out` meanwhile is not overwritten.
  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  let step = opts.stepPages ?? 1024;
  let lastRemaining = Number.POSITIVE_INFINITY;
  let restarts = 0;
  try {
    await db.backup(partial, {
      progress: ({ totalPages, remainingPages }) => {
        if (remainingPages > lastRemaining) {
          restarts++;
          step *= 2;
        }
        lastRemaining = remainingPages;
        opts.onProgress?.({ totalPages, remainingPages, restarts });
        return step;
      },
    });
  } finally {
    db.close();
  }
  let pages: number;
  try {
    const copy = new Database(partial, { fileMustExist: true });
    try {
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
      pages = copy.pragma('page_count', { simple: true }) as number;
    } finally {
      copy.close();
    }
    linkSync(partial, out);
  } catch (err) {
    rmSync(partial, { force: true });
    const e = err as Error & { code?: string };
    if (e.code === 'EEXIST') throw new BackupError('DOSIS_ERR_BACKUP_TARGET', `${out} appeared during the backup; it was left alone`);
    throw new BackupError('DOSIS_ERR_BACKUP_CHECK', `the copy failed its check, nothing written to ${out}: ${e.message}`);
  }
  rmSync(partial, { force: true });
  const result: BackupResult = { out, bytes: statSync(out).size, pages, restarts, kind };
  if (kind === 'alarm-center') result.keyFile = secretKeyPath(src);
  return result;
}

const spec = {
  name: 'backup',
  summary: 'A consistent copy of a robot\'s or an alarm centre\'s database, taken while the service runs (SQLite online backup).',
  usage: 'dosis backup <db> <out>',
  options: {},
  help: {},
  allowPositionals: true,
  examples: ['dosis backup /var/lib/dosis/robot.db /var/backups/dosis/robot-2027-01-04.db', 'dosis backup var/alarm-center.db backups/alarm-center.db'],
} as const;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
/** Sources above this size print their progress every 10 %. */
const LARGE_BYTES = 64 * 1024 * 1024;

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const [src, out, ...rest] = args.positionals;
  if (!src || !out || rest.length > 0) {
    process.stderr.write('dosis backup: give the database and the file to write: dosis backup <db> <out> (see: dosis backup --help)\n');
    return 2;
  }
  const large = existsSync(src) && statSync(src).size >= LARGE_BYTES;
  let shownTenth = 0;
  const result = await backupDatabase(src, out, {
    onProgress: ({ totalPages, remainingPages, restarts }) => {
      if (!large) return;
      const tenth = Math.floor((10 * (totalPages - remainingPages)) / Math.max(1, totalPages));
      if (tenth <= shownTenth && restarts === 0) return;
      shownTenth = tenth;
      process.stdout.write(`  ${tenth * 10} % (${totalPages - remainingPages} of ${totalPages} pages${restarts ? `, restarted ${restarts}× as the service wrote` : ''})\n`);
    },
  });
  const what = result.kind === 'alarm-center' ? 'alarm centre database' : result.kind === 'robot' ? 'robot database' : 'database';
  process.stdout.write(`${what} ${src} copied to ${out}: ${mb(result.bytes)}, ${result.pages} pages, integrity checked\n`);
  if (result.keyFile) {
    const present = existsSync(result.keyFile);
    process.stdout.write(
      present
        ? `Keep the key file ${result.keyFile} with this backup, stored apart from it and readable only by the service: the device secrets in the database are encrypted with it, and without it every robot must be registered again.\n`
        : `No key file at ${result.keyFile}: this centre takes its key from DOSIS_ALARM_KEY or its configuration. Keep that key with this backup, stored apart from it: the device secrets in the database are encrypted with it.\n`,
    );
  }
  return 0;
}

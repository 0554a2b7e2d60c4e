// dosis backup: a copy taken while another process writes opens and holds one committed state; refusals; the key file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backupDatabase, type BackupProgress } from '../../bin/backup.js';
import { run } from '../../bin/cli.js';
import { openDatabase } from '../../alarm-center/src/store/database.js';
import { loadSecretKey } from '../../alarm-center/src/store/accounts.js';
import { Store } from '../../firmware-host/src/store/store.js';
import { ManualClock } from '../../protocol/src/clock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-backup-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The dosis dispatcher in this process, its output captured. */
async function dosis(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true));
  try {
    return { code: await run(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** A ledger whose totals row must always match its rows: any torn copy breaks the equation. */
function createLedger(path: string, rows: number): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE ledger (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB NOT NULL);
           CREATE TABLE totals (n INTEGER NOT NULL, sum INTEGER NOT NULL); INSERT INTO totals VALUES (0, 0);`);
  const add = db.prepare('INSERT INTO ledger (v, pad) VALUES (?, randomblob(900))');
  const bump = db.prepare('UPDATE totals SET n = n + 1, sum = sum + ?');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      add.run(i % 97);
      bump.run(i % 97);
    }
  })();
  db.close();
}

/** Another process that commits one ledger row and its totals per transaction until killed. */
const WRITER = `
const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
const db = new Database(process.argv[1]);
db.pragma('busy_timeout = 5000');
const add = db.prepare('INSERT INTO ledger (v, pad) VALUES (?, randomblob(900))');
const bump = db.prepare('UPDATE totals SET n = n + 1, sum = sum + ?');
const one = db.transaction((v) => { add.run(v); bump.run(v); });
let i = 0;
process.stdout.write('writing\\n');
for (;;) one(i++ % 89);
`;

function consistent(path: string): { rows: number } {
  const db = new Database(path, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const t = db.prepare('SELECT n, sum FROM totals').get() as { n: number; sum: number };
    const l = db.prepare('SELECT count(*) AS n, coalesce(sum(v), 0) AS sum FROM ledger').get() as { n: number; sum: number };
    expect(l).toEqual(t);
    return { rows: l.n };
  } finally {
    db.close();
  }
}

describe('dosis backup', () => {
  it('copies a database while another process writes to it: the copy is one committed state', async () => {
    const src = join(dir, 'live.db');
    createLedger(src, 3000);
    const writer = spawn(process.execPath, ['-e', WRITER, src], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
      const seen: BackupProgress[] = [];
      // Small steps, so writes land between them and SQLite has to restart the copy. The other process may not be
      // scheduled between two steps on a busy machine, so a second connection here also commits during the first
      // steps: the restart is certain, not a matter of timing.
      const here = new Database(src);
      here.pragma('busy_timeout = 5000');
      const write = here.transaction((v: number) => {
        here.prepare('INSERT INTO ledger (v, pad) VALUES (?, randomblob(900))').run(v);
        here.prepare('UPDATE totals SET n = n + 1, sum = sum + ?').run(v);
      });
      const r = await backupDatabase(src, join(dir, 'copy.db'), {
        stepPages: 8,
        onProgress: (p) => {
          if (seen.push(p) <= 3) write(seen.length);
        },
      }).finally(() => here.close());
      expect(r.restarts).toBeGreaterThan(0);
      expect(seen.length).toBeGreaterThan(10);
      expect(r.kind).toBe('other');
      expect(r.keyFile).toBeUndefined();
      const { rows } = consistent(join(dir, 'copy.db'));
      expect(rows).toBeGreaterThan(3000);
      expect(existsSync(join(dir, 'copy.db.partial'))).toBe(false);
    } finally {
      writer.kill();
    }
    // The writer went on after the copy was taken: the source is ahead of it, and still consistent itself.
    expect(consistent(src).rows).toBeGreaterThan(consistent(join(dir, 'copy.db')).rows);
  });

  it('copies a robot store and names it', async () => {
    const src = join(dir, 'robot.db');
    Store.open(src, { clock: new ManualClock(0) }).close();
    const r = await backupDatabase(src, join(dir, 'robot-copy.db'));
    expect(r.kind).toBe('robot');
    const copy = new Database(join(dir, 'robot-copy.db'), { readonly: true });
    const schema = (d: Database.Database) => d.prepare('SELECT name, sql FROM sqlite_master ORDER BY name').all();
    const orig = new Database(src, { readonly: true });
    expect(schema(copy)).toEqual(schema(orig));
    expect(copy.pragma('user_version', { simple: true })).toBe(orig.pragma('user_version', { simple: true }));
    copy.close();
    orig.close();
  });

  it('refuses a missing source and an existing target, leaving the target as it was', async () => {
    const at = (f: string) => join(dir, f);
    const missing = await dosis('backup', at('nope.db'), at('out.db'));
    expect(missing).toEqual({ code: 1, out: '', err: `dosis backup: no database at ${at('nope.db')}\n` });
    expect(existsSync(at('out.db'))).toBe(false);

    createLedger(at('a.db'), 10);
    writeFileSync(at('out.db'), 'yesterday\'s backup');
    const exists = await dosis('backup', at('a.db'), at('out.db'));
    expect(exists.code).toBe(1);
    expect(exists.err).toBe(`dosis backup: ${at('out.db')} exists: a backup never overwrites a file; choose a new name\n`);
    expect(readFileSync(at('out.db'), 'utf8')).toBe('yesterday\'s backup');

    writeFileSync(at('junk.db'), 'not a database at all, just text long enough to have a header of sorts');
    const junk = await dosis('backup', at('junk.db'), at('j.db'));
    expect(junk.code).toBe(1);
    expect(junk.err).toMatch(/junk\.db is not a readable SQLite database/);
    expect(existsSync(at('j.db'))).toBe(false);

    expect((await dosis('backup', at('a.db'))).code).toBe(2);
  });

  it('prints its progress for a large database', async () => {
    const src = join(dir, 'large.db');
    const db = new Database(src);
    db.exec('CREATE TABLE t (b BLOB NOT NULL)');
    const add = db.prepare('INSERT INTO t VALUES (randomblob(60000))');
    db.transaction(() => {
      for (let i = 0; i < 1120; i++) add.run();
    })();
    db.close();
    const r = await dosis('backup', src, join(dir, 'large-copy.db'));
    expect(r.code, r.err).toBe(0);
    const tenths = [...r.out.matchAll(/^ {2}(\d+) % \((\d+) of (\d+) pages\)$/gm)].map((m) => Number(m[1]));
    expect(tenths.length).toBeGreaterThanOrEqual(5);
    expect(tenths).toEqual([...tenths].sort((a, b) => a - b));
    expect(r.out).toMatch(/copied to .*large-copy\.db: 6\d\.\d MB, \d+ pages, integrity checked\n$/);
  });

  it('names the alarm centre\'s key file that must be kept with the backup', async () => {
    const src = join(dir, 'alarm-center.db');
    const db = openDatabase(src);
    loadSecretKey(src);
    db.close();
    const r = await dosis('backup', src, join(dir, 'centre-copy.db'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`alarm centre database ${src} copied to ${join(dir, 'centre-copy.db')}`);
    expect(r.out).toContain(`Keep the key file ${src}.key with this backup`);
    // The key stays where it is: a backup copies the database only.
    expect(existsSync(join(dir, 'centre-copy.db.key'))).toBe(false);
  });
});

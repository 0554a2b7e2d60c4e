// Group commit on a real SQLite file: shared transactions, one failing request among others, answers only after
// the WAL's fsync; then through a real listening centre: concurrent posts, duplicates and replays inside one group.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { signedHeaders } from '../../protocol/src/centre/signing.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { openDatabase, type Db } from '../../alarm-center/src/store/database.js';
import { GroupCommit, groupCommitFor, type WalSync } from '../../alarm-center/src/store/group-commit.js';
import { silent } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-gc-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function table(): Db {
  const db = openDatabase(join(dir, 'gc.db'));
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
  return db;
}
const insert = (db: Db, k: string) => () => db.prepare('INSERT INTO t (k) VALUES (?)').run(k).changes;
const keys = (path: string) => {
  const other = new Database(path, { readonly: true });
  try {
    return (other.prepare('SELECT k FROM t ORDER BY k').all() as { k: string }[]).map((r) => r.k);
  } finally {
    other.close();
  }
};

describe('GroupCommit on a SQLite file', () => {
  it('writes requests queued together in one transaction and answers each with its own result', async () => {
    const db = table();
    const g = new GroupCommit(db);
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((k) => g.run(insert(db, k))));
    expect(results).toEqual([1, 1, 1, 1]);
    expect(g.stats).toMatchObject({ commits: 1, requests: 4, largestGroup: 4 });
    expect(keys(db.name)).toEqual(['a', 'b', 'c', 'd']);
    await g.close();
    db.close();
  });

  it('rolls back a failing request alone; the others in its group commit', async () => {
    const db = table();
    const g = new GroupCommit(db);
    const failing = () => {
      db.prepare('INSERT INTO t (k) VALUES (?)').run('half-done');
      throw new Error('refused');
    };
    const [a, bad, b] = await Promise.allSettled([g.run(insert(db, 'a')), g.run(failing), g.run(insert(db, 'b'))]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('fulfilled');
    expect(bad.status === 'rejected' && (bad.reason as Error).message).toBe('refused');
    expect(g.stats.commits).toBe(1);
    expect(keys(db.name)).toEqual(['a', 'b']);
    await g.close();
    db.close();
  });

  it('runs each request once when none fails, and writes a group again with savepoints only when one does', async () => {
    const db = table();
    const g = new GroupCommit(db);
    const runs: Record<string, number> = {};
    const counted = (k: string, fail = false) => () => {
      runs[k] = (runs[k] ?? 0) + 1;
      db.prepare('INSERT INTO t (k) VALUES (?)').run(`${k}-${runs[k]}`);
      if (fail) throw new Error('refused');
    };
    await Promise.all([g.run(counted('a')), g.run(counted('b'))]);
    expect(runs).toEqual({ a: 1, b: 1 });
    const out = await Promise.allSettled([g.run(counted('c')), g.run(counted('bad', true)), g.run(counted('d'))]);
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // c ran, then bad failed and the first pass was rolled back; the second pass ran all three, bad in vain.
    expect(runs).toEqual({ a: 1, b: 1, c: 2, bad: 2, d: 1 });
    expect(keys(db.name)).toEqual(['a-1', 'b-1', 'c-2', 'd-1']);
    expect(g.stats.commits).toBe(2);
    await g.close();
    db.close();
  });

  it('tells its listeners, in the next group, that another connection committed; its own commits do not count', async () => {
    const db = table();
    const g = new GroupCommit(db);
    let told = 0;
    g.onForeignWrite(() => told++);
    await g.run(insert(db, 'a'));
    const first = told;
    await g.run(insert(db, 'b'));
    db.prepare('INSERT INTO t (k) VALUES (?)').run('same handle');
    await g.run(insert(db, 'c'));
    expect(told).toBe(first);
    const other = new Database(db.name);
    other.prepare('INSERT INTO t (k) VALUES (?)').run('other');
    other.close();
    expect(told).toBe(first);
    await g.run(insert(db, 'd'));
    expect(told).toBe(first + 1);
    await g.close();
    db.close();
  });

  it('tries each request alone when the shared transaction is lost, so only the culprit fails', async () => {
    const db = table();
    const g = new GroupCommit(db);
    // Ends the whole transaction, as SQLite does itself on some I/O errors.
    const wrecker = () => {
      db.prepare('ROLLBACK').run();
      throw new Error('transaction lost');
    };
    const out = await Promise.allSettled([g.run(insert(db, 'a')), g.run(wrecker), g.run(insert(db, 'b'))]);
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(keys(db.name)).toEqual(['a', 'b']);
    expect(db.inTransaction).toBe(false);
    await g.close();
    db.close();
  });

  it('answers only after an fsync that began after the COMMIT, and covers the groups committed meanwhile with the next one', async () => {
    const db = table();
    const pending: ((err: Error | null) => void)[] = [];
    const sync: WalSync = (done) => pending.push(done);
    const g = new GroupCommit(db, { sync, maxSyncs: 1 });
    const answered: string[] = [];
    const first = g.run(insert(db, 'a')).then(() => answered.push('a'));
    await new Promise((r) => setImmediate(r));
    // Committed (another connection sees it) but not yet answered: its fsync is still running.
    expect(keys(db.name)).toEqual(['a']);
    expect(pending).toHaveLength(1);
    const second = g.run(insert(db, 'b')).then(() => answered.push('b'));
    const third = g.run(insert(db, 'c')).then(() => answered.push('c'));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(answered).toEqual([]);
    expect(pending).toHaveLength(1);
    pending.shift()!(null);
    await first;
    expect(answered).toEqual(['a']);
    // b and c committed while a's fsync ran: one more fsync covers both.
    expect(pending).toHaveLength(1);
    pending.shift()!(null);
    await Promise.all([second, third]);
    expect(answered).toEqual(['a', 'b', 'c']);
    expect(g.stats.syncs).toBe(2);
    await g.close();
    db.close();
  });

  it('checkpoints the WAL from its worker thread and, past its bound, lets one catch up, so the WAL stops growing', async () => {
    const db = table();
    db.exec('CREATE TABLE u (k TEXT PRIMARY KEY)');
    const walSize = () => statSync(`${db.name}-wal`).size;
    const load = async (g: GroupCommit, into: string) => {
      for (let round = 0; round < 60; round++) {
        await Promise.all(Array.from({ length: 5 }, (_, i) => g.run(() => db.prepare(`INSERT INTO ${into} (k) VALUES (?)`).run(`${round}-${i}-${'x'.repeat(2000)}`))));
      }
    };
    // The same load with checkpoints too rare to run: how far the WAL grows without them.
    const never = new GroupCommit(db, { checkpointEvery: 1_000_000 });
    const start = walSize();
    await load(never, 't');
    const grown = walSize() - start;
    await never.close();
    db.pragma('wal_checkpoint(TRUNCATE)');

    const g = new GroupCommit(db, { checkpointEvery: 4, walLimitBytes: 100_000 });
    // Once its worker has started (a thread with its own connection; slow on a busy machine).
    for (let i = 0; g.checkpoints!.checkpoints === 0; i++) {
      await g.run(() => db.prepare('INSERT INTO u (k) VALUES (?)').run(`warm-${i}`));
      await new Promise((r) => setTimeout(r, 5));
    }
    await load(g, 'u');
    expect(walSize()).toBeLessThan(grown / 2);
    expect(g.checkpoints!.checkpoints).toBeGreaterThan(0);
    // The file keeps its size when SQLite starts it again, so the fill decides: not every checkpoint waits.
    expect(g.stats.catchUps).toBeGreaterThan(0);
    expect(g.stats.catchUps).toBeLessThan(g.checkpoints!.checkpoints);
    expect((db.prepare('SELECT count(*) n FROM u').get() as { n: number }).n).toBeGreaterThanOrEqual(300);
    await g.close();
    db.close();
  });

  it('refuses every request of a batch whose fsync failed', async () => {
    const db = table();
    const g = new GroupCommit(db, { sync: (done) => done(new Error('EIO')) });
    const out = await Promise.allSettled([g.run(insert(db, 'a')), g.run(insert(db, 'b'))]);
    expect(out.every((o) => o.status === 'rejected' && (o.reason as Error).message === 'EIO')).toBe(true);
    await g.close();
    db.close();
  });
});

describe('group commit in a listening centre', () => {
  let app: FastifyInstance;
  let url: string;
  let secret: string;
  let dbPath: string;
  const clock = new SystemClock();

  beforeEach(async () => {
    dbPath = join(dir, 'ac.db');
    secret = registerDevice(dbPath, 'r-1');
    app = await buildApp({ dbPath, clock, logger: silent, config: { rateLimitPerMinute: 0 } });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterEach(async () => {
    await app.close();
  });

  const ev = (id: string, extra: Record<string, unknown> = {}) => ({ eventId: id, seq: 1, type: 'dose_failed', occurredAtMs: clock.now(), doseId: `d-${id}`, payload: {}, ...extra });
  function request(body: unknown, atMs = clock.now()) {
    const raw = JSON.stringify(body);
    const path = '/v1/devices/r-1/events';
    return { path, init: { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...signedHeaders('r-1', secret, 'POST', path, atMs, raw) } } };
  }
  const send = async (r: { path: string; init: RequestInit }) => {
    const res = await fetch(url + r.path, r.init);
    return { status: res.status, body: (await res.json()) as { status?: string; message?: string } };
  };
  /**
   * Connects one socket per request first, then writes every request in the same tick, so the
   * centre reads them in one pass of its event loop and has to group them: the case under test.
   */
  async function burst(reqs: { path: string; init: RequestInit }[]) {
    const { port } = new URL(url);
    let accepted = 0;
    const onConnection = () => accepted++;
    app.server.on('connection', onConnection);
    const sockets = await Promise.all(reqs.map(() => new Promise<Socket>((resolve) => {
      const s = connect(Number(port), '127.0.0.1', () => resolve(s));
    })));
    // Wait until the server has accepted them all, so the requests' bytes are read in one pass.
    while (accepted < reqs.length) await new Promise((r) => setImmediate(r));
    app.server.off('connection', onConnection);
    const replies = sockets.map((s) => new Promise<{ status: number; body: { status?: string; message?: string } }>((resolve) => {
      let raw = '';
      s.on('data', (d: Buffer) => (raw += d.toString()));
      s.on('end', () => resolve({ status: Number(raw.slice(9, 12)), body: JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) }));
    }));
    const before = { ...groupCommitFor(app.db).stats };
    reqs.forEach((r, i) => {
      const body = r.init.body as string;
      const headers = { ...(r.init.headers as Record<string, string>), host: '127.0.0.1', 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
      sockets[i]!.write(`POST ${r.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
    });
    const out = await Promise.all(replies);
    const after = groupCommitFor(app.db).stats;
    return { replies: out, commits: after.commits - before.commits, requests: after.requests - before.requests };
  }
  const stored = () => {
    const db = new Database(dbPath, { readonly: true });
    try {
      return db.prepare(`SELECT event_id, count(*) c FROM events GROUP BY event_id ORDER BY event_id`).all() as { event_id: string; c: number }[];
    } finally {
      db.close();
    }
  };

  it('stores concurrent posts in shared transactions, each answered 201 and durable', async () => {
    const before = { ...groupCommitFor(app.db).stats };
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => send(request(ev(`c-${String(i).padStart(2, '0')}`), clock.now() + i))));
    // And the same again with every request written in one tick.
    const b = await burst(Array.from({ length: 10 }, (_, i) => request(ev(`c-b${i}`), clock.now() + 100 + i)));
    expect(b.replies.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(b.commits).toBeLessThan(b.requests);
    expect(replies.map((r) => r.status)).toEqual(Array(40).fill(201));
    const stats = groupCommitFor(app.db).stats;
    expect(stats.requests - before.requests).toBe(50);
    expect(stats.commits - before.commits).toBeLessThan(50);
    expect(stored()).toHaveLength(50);
  });

  it('keeps dedup exact inside one group: one stored, the rest duplicates, another body a conflict', async () => {
    const e = ev('dup-1');
    const same = Array.from({ length: 6 }, (_, i) => request(e, clock.now() + i));
    const other = request({ ...e, payload: { slot: 3 } }, clock.now() + 50);
    const { replies, commits, requests } = await burst([...same, other]);
    expect(commits).toBeLessThan(requests);
    const statuses = replies.slice(0, 6).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 201]);
    expect(replies.slice(0, 6).filter((r) => r.body.status === 'duplicate')).toHaveLength(5);
    expect(replies[6]!.status).toBe(409);
    expect(stored()).toEqual([{ event_id: 'dup-1', c: 1 }]);
    const alerts = new Database(dbPath, { readonly: true });
    expect((alerts.prepare('SELECT count(*) n FROM alerts').get() as { n: number }).n).toBe(1);
    alerts.close();
  });

  it('refuses a replay racing its original in the same group, and the rest of the group is unaffected', async () => {
    const replayed = request(ev('rp-1'));
    const others = Array.from({ length: 5 }, (_, i) => request(ev(`ok-${i}`), clock.now() + 1 + i));
    const { replies, commits, requests } = await burst([replayed, replayed, ...others]);
    expect(commits).toBeLessThan(requests);
    expect(replies.slice(0, 2).map((r) => r.status).sort()).toEqual([201, 401]);
    expect(replies.slice(0, 2).find((r) => r.status === 401)!.body.message).toMatch(/replay/);
    expect(replies.slice(2).map((r) => r.status)).toEqual(Array(5).fill(201));
    expect(stored().map((s) => s.event_id)).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4', 'rp-1']);
    const db = new Database(dbPath, { readonly: true });
    expect((db.prepare('SELECT count(*) n FROM request_signatures').get() as { n: number }).n).toBe(6);
    db.close();
  });
});

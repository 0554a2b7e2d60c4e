// Group commit: device writes that arrive together share one transaction and one fsync.
//
// Requests are queued and written together once the event loop has read the ones
// that arrived with them (setImmediate runs after the pending I/O callbacks; it
// orders work, it measures no time). A request that fails is rolled back alone and
// the others still commit: the group first runs without savepoints (the common case,
// where none fails); when one fails, the transaction is rolled back and the group is
// written again with each request in its own savepoint. A request's work may
// therefore run twice, and must write only to the database.
//
// Durability is that of `synchronous=FULL`, with the fsync moved off the event loop:
// the group's COMMIT writes its WAL frames (synchronous=NORMAL for that one COMMIT,
// so SQLite does not fsync while the loop waits), then one fsync of the WAL file in
// the thread pool covers every group committed before it began, and only then are
// those groups' requests answered. Up to three fsyncs run at once; groups committed
// while they do wait for the next one, so a busy centre does one fsync per batch of
// groups, not per request. Checkpoints run in a worker thread (store/checkpointer.ts)
// and keep SQLite's own syncs (the WAL before, the database after).
import { closeSync, fdatasync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import { Checkpointer } from './checkpointer.js';

type Job = { work: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void };
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
type Settled = { job: Job; outcome: Outcome };

/** Makes everything written to the WAL so far durable; the default fsyncs the WAL file in the thread pool. */
export type WalSync = ((done: (err: Error | null) => void) => void) & { close?: () => void };

export class GroupCommit {
  readonly #db: Db;
  readonly #maxGroup: number;
  readonly #sync: WalSync | undefined;
  #queue: Job[] = [];
  #scheduled = false;
  /** Committed, not yet covered by an fsync. */
  #unsynced: Settled[] = [];
  #syncing = 0;
  readonly #maxSyncs: number;
  readonly #begin: Statement;
  readonly #commit: Statement;
  readonly #rollback: Statement;
  readonly #savepoint: Statement;
  readonly #release: Statement;
  readonly #rollbackTo: Statement;
  readonly #lazySync: Statement | undefined;
  readonly #dataVersion: Statement;
  #seenVersion: unknown;
  readonly #onForeignWrite = new Set<() => void>();
  readonly #fullSync: Statement | undefined;
  readonly #checkpointer: Checkpointer | undefined;
  readonly #checkpointEvery: number;
  #sinceCheckpoint = 0;
  readonly #walLimitBytes: number;
  readonly #pageSize: number;
  /** Writes wait while a catch-up checkpoint runs. */
  #holding = false;
  /** The WAL's fill as of the last checkpoint, in frames. */
  #walFrames = 0;
  /** Transactions committed, requests they carried, fsyncs done and catch-up checkpoints waited for, for benchmarks and tests. */
  readonly stats = { commits: 0, requests: 0, largestGroup: 0, syncs: 0, catchUps: 0 };

  constructor(db: Db, opts: { maxGroup?: number; sync?: WalSync; maxSyncs?: number; checkpointEvery?: number; walLimitBytes?: number } = {}) {
    this.#db = db;
    this.#maxGroup = opts.maxGroup ?? 256;
    this.#maxSyncs = opts.maxSyncs ?? 3;
    this.#sync = db.memory ? undefined : (opts.sync ?? walFsync(db));
    // IMMEDIATE takes the write lock at once: another process (the CLI registering a device) waits, it cannot deadlock us.
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#savepoint = db.prepare('SAVEPOINT request');
    this.#release = db.prepare('RELEASE request');
    this.#rollbackTo = db.prepare('ROLLBACK TO request');
    this.#dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.#lazySync = this.#sync && db.prepare('PRAGMA synchronous = NORMAL');
    this.#fullSync = this.#sync && db.prepare('PRAGMA synchronous = FULL');
    this.#checkpointEvery = opts.checkpointEvery ?? 64;
    this.#walLimitBytes = opts.walLimitBytes ?? 64 * 1024 * 1024;
    this.#pageSize = db.pragma('page_size', { simple: true }) as number;
    if (!db.memory) {
      // Checkpoints move to a worker (store/checkpointer.ts); the group commit asks for one every so many commits.
      db.pragma('wal_autocheckpoint = 0');
      this.#checkpointer = new Checkpointer(db.name, () => db.pragma('wal_autocheckpoint = 1000'));
    }
  }

  /** The worker's checkpoint counters, when there is one. */
  get checkpoints(): Checkpointer['stats'] | undefined {
    return this.#checkpointer?.stats;
  }

  /** After the last request has been answered: releases the WAL descriptor and stops the checkpoint worker. */
  async close(): Promise<void> {
    this.#sync?.close?.();
    perDatabase.delete(this.#db);
    await this.#checkpointer?.close();
  }

  /**
   * Calls `listener` in a group's transaction, before its requests' work, when another connection (another process
   * on the same file) has committed since the previous group began: what was cached from the database may be stale.
   */
  onForeignWrite(listener: () => void): void {
    this.#onForeignWrite.add(listener);
  }

  /**
   * Runs `work` inside the next group's transaction; resolves with its result once durable, rejects with its error.
   * `work` may run a second time (after a rollback, when another request of its group failed), so it writes to the
   * database only.
   */
  run<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    // A catch-up checkpoint schedules the next flush when it is done.
    if (this.#holding || this.#queue.length === 0) return;
    const group = this.#queue.splice(0, this.#maxGroup);
    if (this.#queue.length > 0) this.#schedule();
    if (!this.#db.open) {
      for (const job of group) job.reject(new Error('database closed'));
      return;
    }
    const together = this.#transact(group);
    if (Array.isArray(together)) return this.#afterCommit(group, together);
    // The transaction as a whole failed (COMMIT refused, or SQLite rolled it back):
    // nothing of it is stored, so each request is tried again on its own.
    if (group.length === 1) return group[0]!.reject(together.failed);
    for (const job of group) {
      const alone = this.#transact([job]);
      if (Array.isArray(alone)) this.#afterCommit([job], alone);
      else job.reject(alone.failed);
    }
  };

  #transact(group: Job[]): Outcome[] | { failed: unknown } {
    // For this COMMIT only (SQLite takes it outside a transaction): the fsync follows in the thread pool.
    this.#lazySync?.run();
    try {
      return this.#transactLazily(group);
    } finally {
      // Every other writer on this handle (operators, registration) keeps its fsync per COMMIT.
      this.#fullSync?.run();
    }
  }

  #transactLazily(group: Job[]): Outcome[] | { failed: unknown } {
    const first = this.#attempt(group, false);
    // One request failed: nothing of the group is kept, so write it again with each request in its own savepoint.
    return first === 'again' ? (this.#attempt(group, true) as Outcome[] | { failed: unknown }) : first;
  }

  #attempt(group: Job[], careful: boolean): Outcome[] | { failed: unknown } | 'again' {
    try {
      this.#begin.run();
      // Inside the write lock: no other connection can commit until this transaction ends.
      const version = this.#dataVersion.get();
      if (version !== this.#seenVersion) {
        this.#seenVersion = version;
        for (const listener of this.#onForeignWrite) listener();
      }
    } catch (error) {
      if (this.#db.inTransaction) this.#rollback.run();
      return { failed: error };
    }
    const out: Outcome[] = [];
    for (const job of group) {
      if (careful) this.#savepoint.run();
      try {
        out.push({ ok: true, value: job.work() });
        if (careful) this.#release.run();
      } catch (error) {
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction.
        if (!this.#db.inTransaction) return { failed: error };
        if (!careful) {
          this.#rollback.run();
          // Alone in its group, the rollback is all a savepoint would have done.
          return group.length === 1 ? [{ ok: false, error }] : 'again';
        }
        this.#rollbackTo.run();
        this.#release.run();
        out.push({ ok: false, error });
      }
    }
    try {
      this.#commit.run();
    } catch (error) {
      if (this.#db.inTransaction) this.#rollback.run();
      return { failed: error };
    }
    this.stats.commits++;
    this.stats.requests += group.length;
    this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length);
    return out;
  }

  /**
   * Every so many commits, a checkpoint in the worker. They run alongside the writes, but one racing new frames
   * never lets the WAL start again from its beginning; so once the WAL has grown past its bound, writes wait for
   * one checkpoint to catch up.
   */
  #maybeCheckpoint(): void {
    if (++this.#sinceCheckpoint < this.#checkpointEvery || !this.#checkpointer || this.#checkpointer.busy) return;
    this.#sinceCheckpoint = 0;
    this.#holding = this.#walFrames * this.#pageSize > this.#walLimitBytes;
    if (this.#holding) this.stats.catchUps++;
    this.#checkpointer.request((walFrames) => {
      if (walFrames !== undefined) this.#walFrames = walFrames;
      if (!this.#holding) return;
      // Nothing was written while it ran, so it copied every frame and the next transaction starts the WAL again.
      if (walFrames !== undefined) this.#walFrames = 0;
      this.#holding = false;
      this.#schedule();
    });
  }

  /** Answers wait for an fsync begun after their COMMIT; a duplicate or a refusal waits too, since what it saw may be just as new. */
  #afterCommit(group: Job[], outcomes: Outcome[]): void {
    this.#maybeCheckpoint();
    const settled = group.map((job, i) => ({ job, outcome: outcomes[i]! }));
    if (!this.#sync) return settle(settled);
    this.#unsynced.push(...settled);
    if (this.#syncing < this.#maxSyncs) this.#startSync();
  }

  #startSync(): void {
    const batch = this.#unsynced;
    this.#unsynced = [];
    this.#syncing++;
    this.#sync!((err) => {
      this.#syncing--;
      this.stats.syncs++;
      if (err) for (const s of batch) s.job.reject(err);
      else settle(batch);
      if (this.#unsynced.length > 0 && this.#syncing < this.#maxSyncs) this.#startSync();
    });
  }
}

function settle(batch: Settled[]): void {
  for (const { job, outcome } of batch) {
    if (outcome.ok) job.resolve(outcome.value);
    else job.reject(outcome.error);
  }
}

/**
 * fsync of the WAL file through a descriptor held from start-up, so a write-back error
 * since then is reported to it. The directory is synced once, so the WAL file's own entry is durable.
 */
function walFsync(db: Db): WalSync {
  const dir = openSync(dirname(db.name), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  const fd = openSync(`${db.name}-wal`, 'r+');
  return Object.assign((done: (err: Error | null) => void) => fdatasync(fd, done), { close: () => closeSync(fd) });
}

const perDatabase = new WeakMap<Db, GroupCommit>();

/** The one group commit of a database handle (its counters show how well requests are grouped). */
export function groupCommitFor(db: Db): GroupCommit {
  let g = perDatabase.get(db);
  if (!g) perDatabase.set(db, (g = new GroupCommit(db)));
  return g;
}

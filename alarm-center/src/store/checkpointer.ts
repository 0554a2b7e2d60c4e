// WAL checkpoints in a worker thread with its own connection to the file, so the event loop never waits for a
// checkpoint's page copies and fsyncs (SQLite's automatic checkpoint runs inside whichever COMMIT crosses its
// threshold, and stalls every request behind it). One checkpoint at a time; PASSIVE, so writers never wait for it
// (the group commit decides when they should: see store/group-commit.ts).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Plain CommonJS, run with `eval`: the same text works under tsx and in the compiled build.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
parentPort.on('message', () => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: r.busy === 0, log: r.log });
  } catch (err) {
    parentPort.postMessage({ ok: false, log: -1 });
  }
});
`;

export class Checkpointer {
  readonly #worker: Worker;
  #busy = false;
  #done: ((walFrames: number | undefined) => void) | undefined;
  #lost = false;
  #closing = false;
  /** Checkpoints done and ones that could not run (busy or failed), for tests and benchmarks. */
  readonly stats = { checkpoints: 0, missed: 0 };

  /** `onLost` runs if the worker dies; the caller then goes back to SQLite's own checkpoints. */
  constructor(path: string, onLost: () => void) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER, { eval: true, workerData: { path, sqlite } });
    this.#worker.unref();
    const lost = () => {
      if (this.#closing || this.#lost) return;
      this.#lost = true;
      this.#busy = false;
      onLost();
      this.#done?.(undefined);
    };
    this.#worker.on('error', lost);
    this.#worker.on('exit', lost);
    this.#worker.on('message', (m: { ok: boolean; log: number }) => {
      this.#busy = false;
      if (m.ok) this.stats.checkpoints++;
      else this.stats.missed++;
      this.#done?.(m.ok ? m.log : undefined);
    });
  }

  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Starts a checkpoint unless one is running; `done` runs when it has finished, with the frames the WAL held
   * (its fill: the file's size does not show it, as SQLite reuses the file from its start without shrinking it).
   */
  request(done: (walFrames: number | undefined) => void): void {
    if (this.#busy || this.#lost) return;
    this.#busy = true;
    this.#done = done;
    this.#worker.postMessage(0);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#worker.terminate();
  }
}

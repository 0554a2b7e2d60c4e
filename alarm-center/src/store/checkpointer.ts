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
    parentPort.postMessage({ ok: r.busy === 0, frames: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, frames: 0 });
  }
});
`;

export class Checkpointer {
  readonly #worker: Worker;
  #busy = false;
  #done: (() => void) | undefined;
  #lost = false;
  #closing = false;
  /** Checkpoints done, frames they copied, and ones that could not run (busy or failed), for tests and benchmarks. */
  readonly stats = { checkpoints: 0, frames: 0, missed: 0 };

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
      this.#done?.();
    };
    this.#worker.on('error', lost);
    this.#worker.on('exit', lost);
    this.#worker.on('message', (m: { ok: boolean; frames: number }) => {
      this.#busy = false;
      if (m.ok) this.stats.checkpoints++;
      else this.stats.missed++;
      this.stats.frames += m.frames;
      this.#done?.();
    });
  }

  get busy(): boolean {
    return this.#busy;
  }

  /** Starts a checkpoint unless one is running; `done` runs when it has finished. */
  request(done: () => void): void {
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

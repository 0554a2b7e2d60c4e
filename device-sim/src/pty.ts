// A pseudo-terminal pair through socat, so the host and the simulator talk over a real serial device; plus replug handling.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SystemClock, type Clock, type TimerHandle } from '../../protocol/src/clock.js';
import type { Transport } from '../../protocol/src/transport.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';

export class PtyError extends Error {
  constructor(
    readonly code: 'DOSIS_ERR_NO_SOCAT' | 'DOSIS_ERR_PTY',
    message: string,
  ) {
    super(message);
  }
}

export type PtyPair = {
  /** The end the host opens (`<dir>/host`). */
  hostPath: string;
  /** The end the simulator opens (`<dir>/sim`). */
  simPath: string;
  /** Kills socat: both ends vanish, as when the USB cable is pulled. */
  unplug(): Promise<void>;
  /** Starts socat again with the same links. */
  replug(): Promise<void>;
  close(): Promise<void>;
};

const LINK_WAIT_MS = 5000;
const POLL_MS = 20;

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** Starts `socat pty,raw,echo=0,link=<dir>/host pty,raw,echo=0,link=<dir>/sim` and waits until both links exist. */
export async function createPtyPair(opts: { dir?: string; clock?: Clock } = {}): Promise<PtyPair> {
  const clock = opts.clock ?? new SystemClock();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'dosis-pty-'));
  const hostPath = join(dir, 'host');
  const simPath = join(dir, 'sim');
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${hostPath}`, `pty,raw,echo=0,link=${simPath}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString();
    });
    let failure: Error | undefined;
    proc.on('error', (err: NodeJS.ErrnoException) => {
      failure = err.code === 'ENOENT'
        ? new PtyError('DOSIS_ERR_NO_SOCAT', 'socat is not installed: apt-get install socat')
        : new PtyError('DOSIS_ERR_PTY', `cannot start socat: ${err.message}`);
    });
    let exited = false;
    proc.on('exit', () => (exited = true));
    child = proc;
    const deadline = clock.now() + LINK_WAIT_MS;
    while (!(existsSync(hostPath) && existsSync(simPath))) {
      if (failure) throw failure;
      if (exited) throw new PtyError('DOSIS_ERR_PTY', `socat exited: ${stderr.trim().split('\n').pop() ?? ''}`);
      if (clock.now() > deadline) {
        proc.kill('SIGTERM');
        throw new PtyError('DOSIS_ERR_PTY', `socat did not create ${hostPath} and ${simPath} within ${LINK_WAIT_MS} ms`);
      }
      await sleep(clock, POLL_MS);
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
    // socat removes its links on exit; make sure, so a replug waits for fresh ones.
    rmSync(hostPath, { force: true });
    rmSync(simPath, { force: true });
  };

  try {
    await start();
  } catch (err) {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    hostPath,
    simPath,
    unplug: stop,
    replug: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Keeps a serial device attached to `attach`: opens `path`, and whenever it closes
 * (unplug) polls until it can open it again. Returns a function that stops for good.
 */
export function keepSerialAttached(opts: {
  path: string;
  baudRate: number;
  attach: (t: Transport) => void;
  clock?: Clock;
  logger?: Logger;
  retryMs?: number;
}): () => void {
  const clock = opts.clock ?? new SystemClock();
  const retryMs = opts.retryMs ?? 200;
  let stopped = false;
  let current: Transport | undefined;
  let timer: TimerHandle | undefined;

  const tryOpen = (): void => {
    timer = undefined;
    if (stopped) return;
    if (!existsSync(opts.path)) {
      timer = clock.setTimeout(tryOpen, retryMs);
      return;
    }
    SerialTransport.open(opts.path, opts.baudRate).then(
      (t) => {
        if (stopped) {
          t.close();
          return;
        }
        current = t;
        t.onClose((reason) => {
          if (current !== t) return;
          current = undefined;
          opts.logger?.warn({ path: opts.path, reason }, 'serial port closed; waiting for it to come back');
          if (!stopped) timer = clock.setTimeout(tryOpen, retryMs);
        });
        opts.attach(t);
        opts.logger?.info({ path: opts.path }, 'serial port attached');
      },
      () => {
        if (!stopped) timer = clock.setTimeout(tryOpen, retryMs);
      },
    );
  };
  tryOpen();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
    const t = current;
    current = undefined;
    t?.close();
  };
}

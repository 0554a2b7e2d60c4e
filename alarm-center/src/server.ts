// Starts the alarm centre on a port: listening, logging, graceful close; also the programmatic set-up helpers.
import closeWithGrace from 'close-with-grace';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../protocol/src/clock.js';
import { SystemClock } from '../../protocol/src/clock.js';
import { buildApp } from './app.js';
import { DEFAULT_CONFIG, type AlarmConfig } from './config.js';
import { addOperator as addOperatorRow, loadSecretKey, registerDevice as registerDeviceRow, type Role } from './store/accounts.js';
import { openDatabase } from './store/database.js';

export type StartOptions = {
  port?: number | undefined;
  host?: string | undefined;
  dbPath: string;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  config?: Partial<AlarmConfig> | undefined;
};
export type RunningAlarmCenter = { url: string; close(): Promise<void> };

const defaultLogger = (opts: StartOptions) => pino({ name: 'alarm-center', level: opts.config?.logLevel ?? DEFAULT_CONFIG.logLevel }, pino.destination(2));

export async function startAlarmCenter(opts: StartOptions): Promise<RunningAlarmCenter> {
  const logger = opts.logger ?? defaultLogger(opts);
  const app = await buildApp({ dbPath: opts.dbPath, clock: opts.clock ?? new SystemClock(), logger, config: opts.config });
  const address = await app.listen({ port: opts.port ?? 8470, host: opts.host ?? '127.0.0.1' });
  let closing: Promise<void> | undefined;
  return { url: address, close: () => (closing ??= app.close().then(() => undefined)) };
}

/** Runs until SIGINT/SIGTERM, then closes cleanly (the CLI's long-running mode). */
export async function serveUntilSignal(opts: StartOptions): Promise<RunningAlarmCenter> {
  const logger = opts.logger ?? defaultLogger(opts);
  const running = await startAlarmCenter({ ...opts, logger });
  closeWithGrace({ delay: 5000 }, async ({ err, signal }) => {
    if (err) logger.error({ err }, 'closing after an error');
    else logger.info({ signal }, 'closing');
    await running.close();
  });
  return running;
}

/** Registers a device in the database file; returns the secret (shown once, never again). */
export function registerDevice(dbPath: string, deviceId: string, opts: { clock?: Clock; secretKeyHex?: string } = {}): string {
  const db = openDatabase(dbPath);
  try {
    return registerDeviceRow(db, loadSecretKey(dbPath, opts.secretKeyHex), deviceId, (opts.clock ?? new SystemClock()).now());
  } finally {
    db.close();
  }
}

export function addOperator(dbPath: string, username: string, role: Role, password: string, opts: { clock?: Clock } = {}): void {
  const db = openDatabase(dbPath);
  try {
    addOperatorRow(db, username, role, password, (opts.clock ?? new SystemClock()).now());
  } finally {
    db.close();
  }
}

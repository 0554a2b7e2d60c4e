// Starts the alarm centre on a port: listening, logging, graceful close; also the programmatic set-up helpers.
import closeWithGrace from 'close-with-grace';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../protocol/src/clock.js';
import { SystemClock } from '../../protocol/src/clock.js';
import { buildApp } from './app.js';
import { DEFAULT_CONFIG, type AlarmConfig } from './config.js';
import { addOperator as addOperatorRow, loadSecretKey, registerDevice as registerDeviceRow, type Role } from './store/accounts.js';
import { openDatabase } from './store/database.js';
import { setDistrict } from './store/alerts.js';
import { badRequest } from './errors.js';
import { DISTRICT_PATTERN } from './schemas/operator.js';

const DISTRICT_RE = new RegExp(DISTRICT_PATTERN, 'u');

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
  // What the centre runs with, for whoever reads the log after an incident (the key stays out of it).
  const { secretKeyHex, ...settings } = app.config;
  logger.info({ settings, secretKey: secretKeyHex ? 'configured' : 'from environment or key file' }, 'settings');
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
export function registerDevice(dbPath: string, deviceId: string, opts: { clock?: Clock; secretKeyHex?: string; district?: string | undefined } = {}): string {
  const db = openDatabase(dbPath);
  try {
    const now = (opts.clock ?? new SystemClock()).now();
    if (opts.district !== undefined && !DISTRICT_RE.test(opts.district)) throw badRequest('district: 1-60 letters, digits, spaces and . _ -');
    const secret = registerDeviceRow(db, loadSecretKey(dbPath, opts.secretKeyHex), deviceId, now);
    if (opts.district !== undefined) setDistrict(db, deviceId, opts.district, 'system', now);
    return secret;
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

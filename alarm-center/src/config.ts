// Alarm centre settings with their defaults and their checks; every duration in milliseconds.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type AlarmConfig = {
  /** Unclaimed alerts are notified again this often. */
  renotifyMs: number;
  /** Unclaimed alerts go to a supervisor after this long. */
  escalateAfterMs: number;
  /** Claimed but unresolved alerts remind the claiming operator this often. */
  remindMs: number;
  /** Heartbeat interval the centre tells devices to use. */
  heartbeatIntervalMs: number;
  /** How often the scheduler looks at the database. */
  schedulerTickMs: number;
  signatureWindowMs: number;
  sessionTtlMs: number;
  bodyLimitBytes: number;
  /** Requests per minute per address (operators' routes), and per device for signed requests; 0 turns both off. */
  rateLimitPerMinute: number;
  /**
   * Behind a reverse proxy: which proxies to believe for X-Forwarded-For/-Proto (true: any; a string: a
   * comma-separated list of addresses or CIDR ranges); false (default) reads the socket only.
   */
  trustProxy: boolean | string;
  /** A silence ends at most this many days ahead. */
  maxSilenceDays: number;
  /** Failed logins from one client address before it is locked out with growing delays; 0 counts per username only. */
  loginFailuresPerAddress: number;
  /** IANA time zone in which the dashboard shows dates and the reports count months. */
  timeZone: string;
  logLevel: LogLevel;
  /** 32-byte key (hex) that encrypts device secrets at rest; see README. */
  secretKeyHex?: string | undefined;
};

export const DEFAULT_CONFIG: AlarmConfig = {
  renotifyMs: 60_000,
  escalateAfterMs: 180_000,
  remindMs: 300_000,
  heartbeatIntervalMs: 300_000,
  schedulerTickMs: 1_000,
  signatureWindowMs: 5 * 60_000,
  sessionTtlMs: 12 * 3600_000,
  bodyLimitBytes: 64 * 1024,
  rateLimitPerMinute: 1200,
  trustProxy: false,
  maxSilenceDays: 90,
  loginFailuresPerAddress: 50,
  timeZone: 'Europe/Copenhagen',
  logLevel: 'info',
};

const Ms = (min: number, max: number) => Type.Integer({ minimum: min, maximum: max });
const DAY = 24 * 3600_000;
/** What a config file (JSON) may hold: the settings above, each bounded; an unknown key is an error. */
export const ConfigFile = Type.Object(
  {
    renotifyMs: Type.Optional(Ms(1_000, DAY)),
    escalateAfterMs: Type.Optional(Ms(1_000, DAY)),
    remindMs: Type.Optional(Ms(1_000, DAY)),
    heartbeatIntervalMs: Type.Optional(Ms(1_000, DAY)),
    schedulerTickMs: Type.Optional(Ms(10, 60_000)),
    signatureWindowMs: Type.Optional(Ms(10_000, 3600_000)),
    sessionTtlMs: Type.Optional(Ms(60_000, 7 * DAY)),
    bodyLimitBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 })),
    rateLimitPerMinute: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.String({ minLength: 1, maxLength: 1000, pattern: '^[0-9A-Fa-f.:/, ]+$' })])),
    maxSilenceDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 })),
    loginFailuresPerAddress: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    logLevel: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)))),
  },
  { additionalProperties: false },
);
export type ConfigFile = Static<typeof ConfigFile>;

export class ConfigError extends Error {
  readonly code = 'DOSIS_ERR_CONFIG';
}

/** Checks settings from a file or flags; throws ConfigError naming the first bad one. */
export function checkConfig(raw: unknown, source: string): ConfigFile {
  if (!Value.Check(ConfigFile, raw)) {
    const e = Value.Errors(ConfigFile, raw).First();
    const where = e?.path ? e.path.replace(/^\//, '') : '';
    throw new ConfigError(`${source}: ${where ? `${where}: ` : ''}${e?.message ?? 'invalid'}`);
  }
  const cfg = raw as ConfigFile;
  if (cfg.timeZone !== undefined && !isTimeZone(cfg.timeZone)) throw new ConfigError(`${source}: timeZone: unknown time zone ${JSON.stringify(cfg.timeZone)}`);
  const merged = { ...DEFAULT_CONFIG, ...cfg };
  if (merged.escalateAfterMs <= merged.renotifyMs) throw new ConfigError(`${source}: escalateAfterMs must be longer than renotifyMs`);
  return cfg;
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Reads and checks a JSON config file. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not JSON (${(err as Error).message})`);
  }
  return checkConfig(raw, `config file ${path}`);
}

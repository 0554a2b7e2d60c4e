// `dosis host` configured like a device in the field: flags and a JSON config file with the same keys, flags winning,
// each field checked with a one-line reason; the result is the robot's config (robot.ts).
//
// The device secret is read from a file that only its owner may read, as ssh
// treats a private key: a file group or others can read is refused, never used.

import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '../../protocol/src/clock.js';
import { isDeviceId } from '../../protocol/src/centre/contract.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';
import { DEFAULT_TIME_ZONE } from './roll/manifest-schema.js';
import type { AlarmTarget, RobotConfig } from './robot.js';

export class HostConfigError extends Error {
  readonly code = 'DOSIS_ERR_USAGE';
}

/** The keys a config file may hold: the names of the flags they stand for. */
export const CONFIG_KEYS = [
  'port', 'db', 'profile', 'device-id', 'alarm-center', 'device-secret-file', 'no-alarm-center', 'screens-port', 'screens-host', 'time-zone',
  'link-fault-after', 'log-level',
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];
export type RawSettings = Partial<Record<ConfigKey, string | number | boolean>>;

export const DEFAULT_SCREENS_PORT = 8480;
export const DEFAULT_SCREENS_HOST = '127.0.0.1';
/** Seconds a lost serial link may stay lost before the centre hears of a device fault. */
export const DEFAULT_LINK_FAULT_AFTER_S = 120;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export type HostSettings = {
  port: string;
  db: string;
  profile: string;
  alarm: { url: string; deviceId: string; secretFile: string } | null;
  screens: { port: number; host: string };
  timeZone: string;
  linkFaultAfterMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
};

/** Reads a config file: a JSON object whose keys are flag names. */
export function readConfigFile(path: string): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new HostConfigError(`host: --config ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new HostConfigError(`host: --config ${path}: not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HostConfigError(`host: --config ${path}: must be a JSON object of settings`);
  for (const [k, v] of Object.entries(parsed)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) throw new HostConfigError(`host: --config ${path}: unknown key "${k}" (keys: ${CONFIG_KEYS.join(', ')})`);
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new HostConfigError(`host: --config ${path}: "${k}" must be a string, number or boolean`);
  }
  return parsed as RawSettings;
}

/** Flags over the config file, every field checked; `source` names where a bad value came from. */
export function resolveSettings(flags: RawSettings, file: RawSettings = {}, filePath?: string): HostSettings {
  const get = (k: ConfigKey) => (flags[k] !== undefined ? { v: flags[k], from: `--${k}` } : file[k] !== undefined ? { v: file[k], from: `"${k}" in ${filePath}` } : undefined);
  const bad = (from: string, why: string): never => {
    throw new HostConfigError(`host: ${from} ${why}`);
  };
  const str = (k: ConfigKey): { v: string; from: string } | undefined => {
    const g = get(k);
    if (!g) return undefined;
    if (typeof g.v !== 'string' || g.v.trim() === '') bad(g.from, 'must be a non-empty string');
    return { v: g.v as string, from: g.from };
  };
  const int = (k: ConfigKey, fallback: number, min: number, max: number): number => {
    const g = get(k);
    if (!g) return fallback;
    const n = typeof g.v === 'number' ? g.v : typeof g.v === 'string' && /^\d+$/.test(g.v) ? Number(g.v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) bad(g.from, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(g.v)}`);
    return n;
  };

  const port = str('port') ?? bad('--port', 'is required: the MCU\'s serial device, e.g. /dev/ttyACM0 (see: dosis host --help)');
  const db = str('db') ?? bad('--db', 'is required: the robot\'s SQLite store');
  const profile = str('profile')?.v ?? 'dosis-r1';

  const deviceId = str('device-id');
  if (deviceId && !isDeviceId(deviceId.v)) bad(deviceId.from, 'must be 1-64 of A-Z a-z 0-9 _ - (a pseudonymous id)');
  const url = str('alarm-center');
  if (url) {
    let u: URL | undefined;
    try {
      u = new URL(url.v);
    } catch {
      bad(url.from, `is not a URL: ${JSON.stringify(url.v)}`);
    }
    if (u!.protocol !== 'http:' && u!.protocol !== 'https:') bad(url.from, 'must be an http or https URL');
  }
  const secretFile = str('device-secret-file');
  const none = get('no-alarm-center');
  if (none && typeof none.v !== 'boolean') bad(none.from, 'must be true or false');
  const noCentre = none?.v === true;
  let alarm: HostSettings['alarm'] = null;
  if (noCentre) {
    const given = [url, deviceId, secretFile].find((x) => x);
    if (given) bad(given.from, 'contradicts --no-alarm-center');
  } else {
    if (!url) bad('--alarm-center', 'is required: the alarm centre\'s URL (or --no-alarm-center, and nobody hears of missed doses)');
    if (!deviceId) bad('--device-id', 'is required with --alarm-center: this robot\'s id at the centre');
    if (!secretFile) bad('--device-secret-file', 'is required with --alarm-center: the file holding this robot\'s secret');
    alarm = { url: url!.v, deviceId: deviceId!.v, secretFile: secretFile!.v };
  }

  const screensHost = str('screens-host')?.v ?? DEFAULT_SCREENS_HOST;
  const screensPort = int('screens-port', DEFAULT_SCREENS_PORT, 0, 65535);
  const tz = str('time-zone');
  if (tz) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz.v });
    } catch {
      bad(tz.from, `is not an IANA time zone: ${JSON.stringify(tz.v)}`);
    }
  }
  const linkFaultAfterS = int('link-fault-after', DEFAULT_LINK_FAULT_AFTER_S, 1, 86_400);
  const level = str('log-level')?.v ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) bad(get('log-level')!.from, `must be one of ${LOG_LEVELS.join(', ')}`);

  return {
    port: port.v, db: db.v, profile, alarm, screens: { port: screensPort, host: screensHost }, timeZone: tz?.v ?? DEFAULT_TIME_ZONE,
    linkFaultAfterMs: linkFaultAfterS * 1000, logLevel: level as HostSettings['logLevel'],
  };
}

/** The device secret: refused when group or others may read the file (as ssh refuses such a key), or when it is empty. */
export function readDeviceSecret(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new HostConfigError(`host: --device-secret-file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new HostConfigError(`host: --device-secret-file ${path}: readable by other users (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); chmod 600 it`);
  }
  const secret = readFileSync(path, 'utf8').trim();
  if (!secret || /\s/.test(secret)) throw new HostConfigError(`host: --device-secret-file ${path}: must hold the secret on one line`);
  return secret;
}

/** The robot `dosis host` runs: a real serial port, the wall clock, the store file, the centre and the screens as configured. */
export function hostRobotConfig(s: HostSettings, deps: { clock: Clock; profile: HardwareProfile; logger: Logger; secret: string | null }): RobotConfig {
  const alarm: AlarmTarget | null = s.alarm && deps.secret !== null ? { url: s.alarm.url, deviceId: s.alarm.deviceId, secret: deps.secret } : null;
  return {
    clock: deps.clock, profile: deps.profile, logger: deps.logger,
    open: () => SerialTransport.open(s.port, deps.profile.baudRate),
    store: { path: s.db }, alarm, screens: { port: s.screens.port, host: s.screens.host }, timeZone: s.timeZone,
    linkLostFaultAfterMs: s.linkFaultAfterMs,
  };
}

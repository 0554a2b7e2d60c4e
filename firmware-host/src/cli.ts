// `dosis host`: the robot as it runs on its board (the one assembly of robot.ts, configured by flags or a file), and a bring-up dispense.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { intOption, parseCommand, UsageError } from '../../bin/cli-kit.js';
import { SystemClock } from '../../protocol/src/clock.js';
import { loadProfile, type HardwareProfile } from '../../hardware/src/profile.js';
import { DeviceLink } from './link/link.js';
import { listPorts } from './link/ports.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';
import { countPills } from './dosing/pill-count.js';
import { outcomeLine, Robot, type RobotConfig } from './robot.js';
import {
  CONFIG_KEYS, DEFAULT_LINK_FAULT_AFTER_S, DEFAULT_SCREENS_HOST, DEFAULT_SCREENS_PORT, LOG_LEVELS, hostRobotConfig, readConfigFile, readDeviceSecret, resolveSettings,
  type HostSettings,
} from './host-config.js';
import { DEFAULT_TIME_ZONE } from './roll/manifest-schema.js';

const spec = {
  name: 'host',
  summary: 'The robot: the serial link to the MCU (or the simulator), dispensing the roll loaded in --db, alarm delivery to the alarm centre, the citizen\'s and the pharmacy\'s screens.',
  usage: 'dosis host --port <path> --db <file> (--alarm-center <url> --device-id <id> --device-secret-file <file> | --no-alarm-center) [--config <file>] [options]\n       dosis host --port <path> --dispense-slot N | dosis host --list-ports',
  options: {
    config: { type: 'string' },
    port: { type: 'string' },
    db: { type: 'string' },
    'device-id': { type: 'string' },
    'alarm-center': { type: 'string' },
    'device-secret-file': { type: 'string' },
    'no-alarm-center': { type: 'boolean' },
    'screens-port': { type: 'string' },
    'screens-host': { type: 'string' },
    'time-zone': { type: 'string' },
    'link-fault-after': { type: 'string' },
    profile: { type: 'string' },
    'log-level': { type: 'string' },
    'list-ports': { type: 'boolean' },
    'dispense-slot': { type: 'string' },
  },
  help: {
    config: `JSON file of settings, keyed by these options' names (${CONFIG_KEYS.join(', ')}); options given here win`,
    port: 'serial device of the MCU, e.g. /dev/ttyACM0, or the path `dosis sim --pty` printed',
    db: 'the robot\'s SQLite store (it must exist: dosis robot commission creates it): the roll loaded there (dosis roll load, or the pharmacy screen) is dispensed',
    'device-id': 'this robot\'s id at the alarm centre (dosis alarm-center register-device)',
    'alarm-center': 'the alarm centre\'s URL, e.g. https://alarm.example:8470',
    'device-secret-file': 'file holding this robot\'s secret (refused when group or others may read it: chmod 600)',
    'no-alarm-center': 'run without an alarm centre: nobody hears of missed doses, and both screens say so',
    'screens-port': `port of the citizen's (/) and the pharmacy's (/pharmacy) screens; 0 = any free port (default ${DEFAULT_SCREENS_PORT})`,
    'screens-host': `address the screens listen on (default ${DEFAULT_SCREENS_HOST}: only this board's own display)`,
    'time-zone': `the robot's IANA time zone (default ${DEFAULT_TIME_ZONE})`,
    'link-fault-after': `seconds a lost serial link may stay lost before the alarm centre hears of a device fault (default ${DEFAULT_LINK_FAULT_AFTER_S})`,
    profile: 'hardware profile: an id from hardware/profiles/ or a JSON file (default dosis-r1)',
    'log-level': `pino log level on stderr: ${LOG_LEVELS.join(', ')} (default info)`,
    'list-ports': 'list the serial ports of this machine and exit',
    'dispense-slot': 'bring-up without a store: turn to slot N (0-based), read its label, release it, print the pill count, exit',
  },
  examples: [
    'dosis sim --pty   # in one terminal; prints "host port: <path>"',
    'dosis host --port <path> --dispense-slot 3',
    'dosis host --port /dev/dosis-mcu --db /var/lib/dosis/robot.db --alarm-center https://alarm.example --device-id R-0042 --device-secret-file /etc/dosis/device-secret',
    'dosis host --config /etc/dosis/host.json',
    'dosis host --port <path> --db var/robot.db --no-alarm-center --screens-port 0',
  ],
} as const;

/** Exit status after an error the robot cannot run on (EX_SOFTWARE): the service manager restarts it. */
export const EXIT_FATAL = 70;
/** How long a failing robot waits for the fault to be recorded and its outbox to drain before it exits. */
const FATAL_DRAIN_MS = 15_000;

export type LinkOnlyOptions = { port: string; profile: HardwareProfile; dispenseSlot?: number | undefined; logger: Logger };

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const v = args.values;
  if (v['list-ports']) {
    const r = await listPorts();
    if (!r.ok) {
      process.stdout.write(`${r.reason}\n`);
      return 0;
    }
    if (r.ports.length === 0) process.stdout.write('no serial ports found (a simulator on a pseudo-terminal is not listed: use the path it prints)\n');
    for (const p of r.ports) process.stdout.write(`${p.path}${p.manufacturer ? `  ${p.manufacturer}` : ''}${p.serialNumber ? `  serial ${p.serialNumber}` : ''}\n`);
    return 0;
  }
  if (v['dispense-slot'] !== undefined) {
    if (!v.port) throw new UsageError('host: --port <path> is required (see: dosis host --help)');
    if (v.db !== undefined) throw new UsageError('host: --dispense-slot is for bring-up without a store; leave out --db');
    const profile = loadProfile(v.profile ?? 'dosis-r1');
    const dispenseSlot = intOption('dispense-slot', v['dispense-slot'], 0, 0, profile.slotCount - 1);
    const level = v['log-level'] ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`host: --log-level must be one of ${LOG_LEVELS.join(', ')}`);
    return runLinkOnly({ port: v.port, profile, dispenseSlot, logger: pino({ name: 'host', level }, pino.destination(2)) });
  }
  const { config, 'list-ports': _l, 'dispense-slot': _d, ...flags } = v;
  const settings = resolveSettings(flags, config === undefined ? {} : readConfigFile(config), config);
  const secret = settings.alarm ? readDeviceSecret(settings.alarm.secretFile) : null;
  const profile = loadProfile(settings.profile);
  // A mistyped path would start a robot on an empty database: only `dosis robot commission` creates one.
  if (settings.db !== ':memory:' && !existsSync(settings.db)) {
    throw new UsageError(`host: the database ${settings.db} does not exist; set the robot up first with: dosis robot commission`);
  }
  const logger = pino({ name: 'host', level: settings.logLevel }, pino.destination(2));
  return runRobot(hostRobotConfig(settings, { clock: new SystemClock(), profile, logger, secret }), settings);
}

/** The robot proper: runs until SIGINT or SIGTERM (exit 0), or an error it cannot run on (exit EXIT_FATAL). */
async function runRobot(config: RobotConfig, settings: HostSettings): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const robot = new Robot(config);
  robot.link.on('ready', (h) => out(`hello: MCU ${h.hw} firmware ${h.fw}, boot ${h.boot}`));
  robot.controller.on('outcome', (o) => out(outcomeLine(o)));
  let last = '';
  robot.controller.on('status', (s) => {
    const line = `status: ${s.phase}${s.step ? ` ${s.step}` : ''}${s.current ? ` dose ${s.current.doseId}` : ''}${s.notice ? ` notice ${s.notice}` : ''}`;
    if (line !== last) out((last = line));
  });
  // The screens open first: loading them must not block the event loop once motions can run.
  try {
    const urls = await robot.listen();
    if (urls) {
      out(`citizen screen:  ${urls.citizen}`);
      out(`pharmacy screen: ${urls.pharmacy}`);
    }
  } catch (err) {
    await robot.close();
    process.stderr.write(`dosis host: cannot open the screens on ${settings.screens.host}:${settings.screens.port}: ${(err as Error).message}\n`);
    return 1;
  }
  robot.start();
  out(`robot: ${robot.parts.join(', ')}`);
  if (robot.uncleanStop) {
    out(`the last run did not stop cleanly: last known running at ${new Date(robot.uncleanStop.lastAliveAtMs).toISOString()}${settings.alarm ? '; the alarm centre is told' : ''}`);
  }
  out(settings.alarm ? `alarm centre: ${settings.alarm.url} as ${settings.alarm.deviceId}` : 'alarm centre: none (--no-alarm-center): missed doses are not reported to anyone');
  return new Promise((resolve) => {
    let closing = false;
    const finish = async (code: number) => {
      if (closing) return;
      closing = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await robot.close();
      resolve(code);
    };
    const onSignal = () => void finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    robot.onFatal(async (err) => {
      out(`error: the dose controller failed (${err.name}); stopping, to be restarted`);
      // The fault is in the outbox already; a few seconds for it to reach the centre, else the next run sends it.
      await robot.drained(FATAL_DRAIN_MS);
      await finish(EXIT_FATAL);
    });
  });
}

/** Connects and logs the link; with a dispense slot, does one manual dispense and returns its exit code. */
export function runLinkOnly(o: LinkOnlyOptions): Promise<number> {
  const clock = new SystemClock();
  const link = new DeviceLink({ clock, profile: o.profile, logger: o.logger, open: () => SerialTransport.open(o.port, o.profile.baudRate) });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      link.close();
      resolve(code);
    };
    const onSignal = () => finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    link.on('state', (s) => o.logger.info({ state: s }, 'link state'));
    link.on('heartbeat', (hb) => o.logger.debug({ hb }, 'MCU heartbeat'));
    link.on('event', (ev) => o.logger.info({ ev }, 'MCU event'));
    link.on('mcuReset', (r) => o.logger.warn(r, 'MCU reset'));
    let started = false;
    link.on('ready', async (hello) => {
      out(`hello: MCU ${hello.hw} firmware ${hello.fw}, boot ${hello.boot}, protocol v${hello.v}, catalogue ${hello.cat}`);
      if (started) return;
      started = true;
      try {
        if (o.dispenseSlot !== undefined) finish(await dispense(link, o.profile, o.dispenseSlot, clock, out));
      } catch (err) {
        out(`error: ${(err as Error).message}`);
        finish(1);
      }
    });
    link.start();
  });
}

/** Manual test dispense: ROTATE, show the label, RELEASE, count the pills from the pulses. */
async function dispense(link: DeviceLink, profile: HardwareProfile, slot: number, clock: SystemClock, out: (s: string) => void): Promise<number> {
  const id = () => randomBytes(4).toString('hex').toUpperCase();
  const waitFor = <T>(pick: (ev: import('../../protocol/src/catalogue.js').DeviceEvent) => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        link.off('event', on);
        reject(new Error(`no answer from the MCU within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (ev: import('../../protocol/src/catalogue.js').DeviceEvent) => {
        const v = pick(ev);
        if (v === undefined) return;
        clock.clearTimeout(timer);
        link.off('event', on);
        resolve(v);
      };
      link.on('event', on);
    });
  const rotateId = id();
  const rotated = waitFor((e) => (e.name === 'ROTATED' && e.id === rotateId ? e : undefined), 30_000);
  const r = await link.request({ name: 'ROTATE', id: rotateId, slot, lease: profile.leaseMs });
  if (r.result !== 'OK') {
    out(`rotate to slot ${slot} refused: ${r.result}`);
    return 1;
  }
  const rot = await rotated;
  if (rot.err) {
    out(`rotate to slot ${slot} failed: ${rot.err}`);
    return 1;
  }
  out(`slot ${slot}: label ${rot.label}`);
  const releaseId = id();
  const released = waitFor((e) => (e.name === 'RELEASED' && e.id === releaseId ? e : undefined), 30_000);
  const a = await link.request({ name: 'RELEASE', id: releaseId, slot, lease: profile.leaseMs });
  if (a.result !== 'OK') {
    out(`release of slot ${slot} refused: ${a.result}`);
    return 1;
  }
  const rel = await released;
  const count = countPills(profile, rel.n, rel.w);
  out(`released slot ${slot}: ${rel.n} pulses (widths ${rel.w.join(', ')} ms) → ${count.pills} pills${count.overlaps ? `, ${count.overlaps} overlapping` : ''}${count.noise ? `, ${count.noise} noise pulses ignored` : ''}; pouch ${rel.empty ? 'empty' : 'NOT empty'}`);
  return 0;
}

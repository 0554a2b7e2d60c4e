// `dosis host`: the robot controller's command — connect to the MCU, and (for bring-up) a manual test dispense.

import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { intOption, parseCommand, UsageError } from '../../bin/cli-kit.js';
import { SystemClock } from '../../protocol/src/clock.js';
import { loadProfile, type HardwareProfile } from '../../hardware/src/profile.js';
import { DeviceLink } from './link/link.js';
import { listPorts } from './link/ports.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';
import { countPills } from './dosing/pill-count.js';
import { outcomeLine, startRobot } from './robot.js';

const spec = {
  name: 'host',
  summary: 'The robot controller: opens the serial port to the MCU (or the simulator) and, with --db, dispenses the loaded roll.',
  usage: 'dosis host --port <path> --db <file> | dosis host --port <path> [--dispense-slot N] | dosis host --list-ports',
  options: {
    port: { type: 'string' },
    db: { type: 'string' },
    'list-ports': { type: 'boolean' },
    profile: { type: 'string', default: 'dosis-r1' },
    'dispense-slot': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
  help: {
    port: 'serial device of the MCU, e.g. /dev/ttyACM0, or the path `dosis sim --pty` printed',
    db: 'the robot\'s SQLite store (created if new): run the controller on the roll loaded there (dosis roll load), one line per dose',
    'list-ports': 'list the serial ports of this machine and exit',
    profile: 'hardware profile: an id from hardware/profiles/ or a JSON file',
    'dispense-slot': 'manual test dispense: turn to slot N (0-based), read its label, release it, print the pill count, exit',
    'log-level': 'pino log level on stderr: fatal, error, warn, info, debug, trace',
  },
  examples: ['dosis sim --pty   # in one terminal; prints "host port: <path>"', 'dosis host --port <path> --dispense-slot 3', 'dosis host --port <path> --db var/robot.db'],
} as const;

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
  if (!v.port) throw new UsageError('host: --port <path> is required (or --list-ports; see: dosis host --help)');
  const profile = loadProfile(v.profile);
  const dispenseSlot = v['dispense-slot'] === undefined ? undefined : intOption('dispense-slot', v['dispense-slot'], 0, 0, profile.slotCount - 1);
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
  if (!levels.includes(v['log-level'])) throw new UsageError(`host: --log-level must be one of ${levels.join(', ')}`);
  const logger = pino({ name: 'host', level: v['log-level'] }, pino.destination(2));
  if (v.db !== undefined) {
    if (dispenseSlot !== undefined) throw new UsageError('host: --dispense-slot is for bring-up without a store; leave out --db');
    return runController(v.port, v.db, profile, logger);
  }
  return runLinkOnly({ port: v.port, profile, dispenseSlot, logger });
}

/** The robot proper: runs until SIGINT or SIGTERM. */
function runController(port: string, dbPath: string, profile: HardwareProfile, logger: Logger): Promise<number> {
  const robot = startRobot({ port, dbPath, profile, logger });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  robot.link.on('ready', (h) => out(`hello: MCU ${h.hw} firmware ${h.fw}, boot ${h.boot}`));
  robot.controller.on('outcome', (o) => out(outcomeLine(o)));
  let last = '';
  robot.controller.on('status', (s) => {
    const line = `status: ${s.phase}${s.step ? ` ${s.step}` : ''}${s.current ? ` dose ${s.current.doseId}` : ''}${s.notice ? ` notice ${s.notice}` : ''}`;
    if (line !== last) out((last = line));
  });
  return new Promise((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      robot.close();
      resolve(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
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
  const r = await link.request({ name: 'ROTATE', id: rotateId, slot, lease: profile.leaseMs, dl: 60_000 });
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
  const a = await link.request({ name: 'RELEASE', id: releaseId, slot, lease: profile.leaseMs, dl: 60_000 });
  if (a.result !== 'OK') {
    out(`release of slot ${slot} refused: ${a.result}`);
    return 1;
  }
  const rel = await released;
  const count = countPills(profile, rel.n, rel.w);
  out(`released slot ${slot}: ${rel.n} pulses (widths ${rel.w.join(', ')} ms) → ${count.pills} pills${count.overlaps ? `, ${count.overlaps} overlapping` : ''}${count.noise ? `, ${count.noise} noise pulses ignored` : ''}; pouch ${rel.empty ? 'empty' : 'NOT empty'}`);
  return 0;
}

// `dosis sim`: the device simulator on a pseudo-terminal or a serial path, with a citizen/fault control channel on stdin.

import { randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { intOption, parseCommand, UsageError } from '../../bin/cli-kit.js';
import { SystemClock } from '../../protocol/src/clock.js';
import { loadProfile, DEFAULT_PROFILE_ID } from '../../hardware/src/profile.js';
import { pouchLabel } from '../../protocol/src/label.js';
import { FAULT_NAMES, FaultSpecError, isFaultName, parseFaults } from './faults.js';
import { DeviceSimulator } from './simulator.js';
import { createPtyPair, keepSerialAttached, type PtyPair } from './pty.js';

const spec = {
  name: 'sim',
  summary: 'dosis sim — the simulated robot MCU, speaking the serial protocol',
  usage: 'dosis sim (--pty | --port <path>) [options]',
  options: {
    pty: { type: 'boolean' },
    port: { type: 'string' },
    profile: { type: 'string', default: DEFAULT_PROFILE_ID },
    seed: { type: 'string' },
    faults: { type: 'string' },
    pills: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
  help: {
    pty: 'create a pseudo-terminal pair with socat; the host port is printed on stdout',
    port: 'serial device the simulator opens (its side of a null-modem or pty pair)',
    profile: 'hardware profile id or path to a profile JSON',
    seed: 'random seed (default: random, printed)',
    faults: `fault rates, e.g. jam=0.01,pillStuck=0.02 (names: ${FAULT_NAMES.join(', ')})`,
    pills: 'load a demo roll: every slot filled with this many pills, labels DEMO-001…',
    'log-level': 'pino level for the logs on stderr',
  },
  examples: ['dosis sim --pty --pills 3', 'dosis sim --port /tmp/sim --faults pillStuck=0.05 --seed 7'],
} as const;

const CONTROL_HELP = `control lines: press | take | place | fault NAME=RATE | reset | status | help\n`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const o = parsed.values;
  if (!o.pty && !o.port) throw new UsageError('sim: give --pty or --port <path> (see: dosis sim --help)');
  if (o.pty && o.port) throw new UsageError('sim: --pty and --port exclude each other');
  const profile = loadProfile(o.profile);
  const seed = intOption('seed', o.seed, randomInt(0, 2 ** 31), 0, 2 ** 32 - 1);
  let faults = {};
  try {
    faults = parseFaults(o.faults ?? '');
  } catch (err) {
    throw new UsageError(`sim: --faults: ${(err as Error).message}`);
  }
  const pills = o.pills === undefined ? undefined : intOption('pills', o.pills, 0, 0, 50);
  const logger = pino({ name: 'device-sim', level: o['log-level'] }, pino.destination(2));
  const clock = new SystemClock();

  const sim = new DeviceSimulator({ clock, profile, seed, faults, logger });
  if (pills !== undefined) {
    sim.loadPouches(Array.from({ length: profile.slotCount }, (_, slot) => ({ slot, label: pouchLabel('DEMO', slot + 1), pills })));
  }

  let pair: PtyPair | undefined;
  let simPath = o.port!;
  if (o.pty) {
    pair = await createPtyPair();
    simPath = pair.simPath;
    process.stdout.write(`host port: ${pair.hostPath}\n`);
  }
  process.stdout.write(`seed: ${seed}\n`);
  const detach = keepSerialAttached({ path: simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(t), clock, logger });
  logger.info({ profile: profile.id, seed, faults, bootId: sim.bootId, simPath }, 'simulator running');

  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => process.stdout.write(control(sim, line.trim())));

  await new Promise<void>((resolve) => {
    const done = (signal: string) => {
      logger.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
  rl.close();
  detach();
  sim.stop();
  await pair?.close();
  return 0;
}

/** One control-channel line → the reply text. */
export function control(sim: DeviceSimulator, line: string): string {
  const [word, arg] = line.split(/\s+/, 2);
  switch (word) {
    case '':
    case undefined:
      return '';
    case 'press':
      sim.pressButton();
      return 'ok: button pressed\n';
    case 'take':
      sim.takeCup();
      return 'ok: cup taken\n';
    case 'place':
      sim.placeCup();
      return 'ok: cup placed\n';
    case 'reset':
      sim.powerCycle();
      return `ok: reset, boot ${sim.bootId}\n`;
    case 'status':
      return `${JSON.stringify({ ...sim.status(), faults: Object.fromEntries(Object.entries(sim.faults).filter(([, r]) => r > 0)) })}\n`;
    case 'fault': {
      const [name, rate] = (arg ?? '').split('=');
      if (!name || !isFaultName(name)) return `error: unknown fault ${JSON.stringify(name ?? '')}; known: ${FAULT_NAMES.join(', ')}\n`;
      try {
        sim.setFault(name, Number(rate === undefined || rate === '' ? NaN : rate));
      } catch (err) {
        if (err instanceof FaultSpecError) return `error: ${err.message}\n`;
        throw err;
      }
      return `ok: ${name}=${sim.faults[name]}\n`;
    }
    case 'help':
      return CONTROL_HELP;
    default:
      return `error: unknown control ${JSON.stringify(word)}; ${CONTROL_HELP}`;
  }
}

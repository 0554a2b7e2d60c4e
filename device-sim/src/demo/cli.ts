// `dosis demo` (npm start): the whole system on the simulator — robot, citizen and pharmacy screens, alarm centre — with a narrated day.
//
// The console gets plain lines (one per thing that happens); pino's structured
// logs go to demo.log in the data directory. A simulated citizen presses the
// button and takes the cup; some doses are forgotten so the alarm centre has
// something to show. Commands on stdin steer it while it runs.

import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { intOption, numberOption, parseCommand, UsageError } from '../../../bin/cli-kit.js';
import { PacedClock, SystemClock, type Clock } from '../../../protocol/src/clock.js';
import { FAULT_NAMES, isFaultName, parseFaults, type FaultRates } from '../faults.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import type { ControllerStatus } from '../../../firmware-host/src/controller.js';
import { outcomeLine } from '../../../firmware-host/src/robot.js';
import { SimulatedCitizen } from './citizen.js';
import { DEMO_CITIZEN, DEMO_OPERATOR, DEMO_STAFF, DEMO_TIME_ZONE, demoDoses, startDemoSystem, type DemoSystem } from './system.js';
import { exampleManifest } from '../../../firmware-host/src/roll/example.js';

const spec = {
  name: 'demo',
  summary: 'The whole dosis system on the simulator: the robot with its citizen and pharmacy screens, a simulated citizen, and the alarm centre with its dashboard.',
  usage: 'dosis demo [--speed N] [--port-screen P] [--port-alarm P] [--data DIR] [--keep] [--seed N] [--faults name=rate,...] [--forget RATE]',
  options: {
    speed: { type: 'string', default: '1' },
    'port-screen': { type: 'string', default: '8480' },
    'port-alarm': { type: 'string', default: '8470' },
    data: { type: 'string', default: 'var/demo' },
    keep: { type: 'boolean' },
    seed: { type: 'string' },
    faults: { type: 'string' },
    forget: { type: 'string', default: '0.25' },
    'log-level': { type: 'string', default: 'info' },
  },
  help: {
    speed: 'how many times faster than real time the day runs; 1 uses a real pseudo-terminal (socat) between robot and simulator, more uses the in-memory wire',
    'port-screen': 'port of the robot\'s screens (citizen at /, pharmacy at /pharmacy); 0 = any free port',
    'port-alarm': 'port of the alarm centre (dashboard at /); 0 = any free port',
    data: 'directory for the robot\'s and the centre\'s databases and demo.log (created)',
    keep: 'keep the databases of the last run instead of starting fresh',
    seed: 'random seed of the simulator and the simulated citizen (default: random)',
    faults: `simulator faults, name=rate,... (${FAULT_NAMES.join(', ')})`,
    forget: 'fraction of doses the simulated citizen forgets (they go overdue and missed: alarms)',
    'log-level': 'level of the pino log in <data>/demo.log',
  },
  examples: ['npm start', 'dosis demo --speed 600', 'dosis demo --speed 120 --faults pillStuck=0.2,missedPulse=0.01 --forget 0.5'],
} as const;

const COMMANDS_HELP = [
  'help                  this list',
  'fault NAME RATE       set a simulator fault rate (0..1) while it runs, e.g. fault pillsStuckForGood 1',
  'press                 the citizen presses the robot\'s button',
  'take                  the citizen takes the cup (and puts it back later)',
  'status                what the robot is doing, the next dose, the alarm outbox',
  'example               write a roll manifest for this robot to load on the pharmacy screen',
  'quit                  close everything and exit',
].join('\n');

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const v = args.values;
  const speed = numberOption('speed', v.speed, 1, 1, 100_000);
  const portScreen = intOption('port-screen', v['port-screen'], 8480, 0, 65535);
  const portAlarm = intOption('port-alarm', v['port-alarm'], 8470, 0, 65535);
  const forget = numberOption('forget', v.forget, 0.25, 0, 1);
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(v['log-level'])) throw new UsageError(`demo: --log-level must be one of ${levels.join(', ')}`);
  let faults: Partial<FaultRates> = {};
  try {
    if (v.faults) faults = parseFaults(v.faults);
  } catch (err) {
    throw new UsageError(`demo: --faults: ${(err as Error).message}`);
  }
  const wall = new SystemClock();
  const seed = v.seed === undefined ? wall.now() % 1_000_000 : intOption('seed', v.seed, 1, 0, 0xffffffff);
  const dataDir = resolve(v.data);
  const profile = loadProfile('dosis-r1');
  const logger = pino({ name: 'dosis-demo', level: v['log-level'] }, pino.destination({ dest: join(dataDir, 'demo.log'), mkdir: true, sync: true }));

  let clock: Clock = wall;
  let paced: PacedClock | undefined;
  if (speed > 1) {
    paced = new PacedClock(speed, wall.now());
    paced.start();
    clock = paced;
  }
  const time = new Intl.DateTimeFormat('en-GB', { timeZone: DEMO_TIME_ZONE, weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const out = (line: string) => process.stdout.write(`${time.format(new Date(clock.now()))}  ${line}\n`);

  let system: DemoSystem;
  try {
    system = await startDemoSystem({
      dataDir, keep: v.keep ?? false, clock, speed, profile, seed, faults, serial: speed > 1 ? 'memory' : 'pty',
      portScreen, portAlarm, logger, timeZone: DEMO_TIME_ZONE,
      onAlarm: (e) => out(`alarm centre ${e.status === 'duplicate' ? 'already had' : 'received'}: ${e.type}${e.doseId ? ` for dose ${e.doseId}` : ''}`),
    });
  } catch (err) {
    paced?.stop();
    const e = err as Error & { code?: string };
    process.stderr.write(`dosis demo: cannot start: ${e.message}\n`);
    return 1;
  }
  const s = system;
  const citizen = new SimulatedCitizen({ clock: s.clock, sim: s.sim, controller: s.controller, seed, forgetRate: forget, say: out });

  process.stdout.write([
    'dosis demo — the whole system on the simulator',
    `  citizen screen:   ${s.urls.citizen}`,
    `  pharmacy screen:  ${s.urls.pharmacy}   (log in as ${DEMO_STAFF.staffId} / ${DEMO_STAFF.pin}; "example" writes a roll to load there)`,
    `  alarm dashboard:  ${s.urls.alarm}   (log in as ${DEMO_OPERATOR.username} / ${DEMO_OPERATOR.password})`,
    `  speed ${speed}x, ${speed > 1 ? 'in-memory serial wire' : 'serial over a socat pseudo-terminal'}, seed ${seed}, citizen forgets ${Math.round(forget * 100)} % of doses`,
    `  data and log: ${dataDir}`,
    '  type "help" for commands, "quit" or Ctrl-C to stop',
    '',
  ].join('\n'));

  s.link.on('ready', (h) => out(`robot: MCU ${h.hw} firmware ${h.fw} connected (boot ${h.boot})`));
  s.link.on('state', (st) => {
    if (st === 'lost') out('robot: serial link lost, reconnecting');
  });
  let last: ControllerStatus | undefined;
  s.controller.on('status', (st) => {
    narrate(out, last, st);
    last = st;
  });
  s.controller.on('outcome', (o) => out(`dosing: ${outcomeLine(o)}`));

  // Unique per run, so a --keep run's new roll never collides with the last one.
  const rollId = `DEMO-${Math.floor(s.clock.now() / 1000).toString(36).toUpperCase()}`;
  const doses = demoDoses(s.clock.now(), { timeZone: DEMO_TIME_ZONE, slotCount: profile.slotCount, seed });
  s.loadRoll(doses, rollId);
  out(`roll ${rollId} loaded: ${doses.length} doses, the first at ${time.format(new Date(doses[0]!.intakeAtMs))}`);

  return new Promise<number>((resolveExit) => {
    let closing: Promise<void> | undefined;
    const shutdown = (): Promise<void> => (closing ??= (async () => {
      citizen.stop();
      rl.close();
      // An open stdin pipe would keep the process alive after everything else closed.
      process.stdin.destroy();
      await s.close();
      paced?.stop();
      out('closed');
    })());
    const grace = closeWithGrace({ delay: 10_000 }, async ({ err }) => {
      if (err) process.stderr.write(`dosis demo: ${(err as Error).message}\n`);
      await shutdown();
    });
    // As on a real robot: an error in the dose controller stops everything, with a non-zero exit.
    s.robot.onFatal((err) => {
      out(`robot: the dose controller failed (${err.name}); stopping`);
      grace.uninstall();
      void shutdown().then(() => resolveExit(1), () => resolveExit(1));
    });
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => {
      const [cmd, ...rest] = line.trim().split(/\s+/);
      switch (cmd) {
        case '':
        case undefined:
          return;
        case 'help':
          process.stdout.write(`${COMMANDS_HELP}\n`);
          return;
        case 'press':
          citizen.press();
          return;
        case 'take':
          citizen.take();
          return;
        case 'status':
          out(statusLine(s));
          return;
        case 'example': {
          // A roll for this robot's citizen that takes over at its first dose not yet dispensed.
          const left = s.store.remainingPouches();
          if (left.length === 0) {
            out('no dose left to take over from');
            return;
          }
          // A dose due now can be neither skipped nor taken over (its time is past): wait until it has ended.
          if (left[0]!.intakeAtMs <= s.clock.now()) {
            out(`dose ${left[0]!.doseId} is due now; try "example" again once it has ended`);
            return;
          }
          const file = join(dataDir, 'example-roll.json');
          const exampleId = `EX${Math.floor(s.clock.now() / 1000).toString(36).toUpperCase()}`.slice(0, 16);
          writeFileSync(file, exampleManifest({ rollId: exampleId, citizenId: DEMO_CITIZEN, timeZone: DEMO_TIME_ZONE, pouches: left.map((d) => ({ intakeAtMs: d.intakeAtMs, pills: d.pillCount })) }));
          out(`example roll ${exampleId} written to ${file}: load it on the pharmacy screen, ticking "take back" for the pouches of the roll now loaded`);
          return;
        }
        case 'fault': {
          const [name, rate] = rest;
          const r = Number(rate);
          if (!name || !isFaultName(name) || rate === undefined || !Number.isFinite(r) || r < 0 || r > 1) {
            out(`usage: fault NAME RATE, RATE from 0 to 1, NAME one of ${FAULT_NAMES.join(', ')}`);
            return;
          }
          s.sim.setFault(name, r);
          out(`simulator fault ${name} now at rate ${r}`);
          return;
        }
        case 'quit':
        case 'exit':
          grace.uninstall();
          void shutdown().then(() => resolveExit(0), (err: Error) => {
            process.stderr.write(`dosis demo: closing failed: ${err.message}\n`);
            resolveExit(1);
          });
          return;
        default:
          out(`unknown command ${JSON.stringify(cmd)} (type "help")`);
      }
    });
  });
}

function narrate(out: (l: string) => void, before: ControllerStatus | undefined, st: ControllerStatus): void {
  const dose = st.current?.doseId ?? '';
  const changed = before?.phase !== st.phase || (before?.current?.doseId ?? '') !== dose;
  if (changed) {
    if (st.phase === 'due') out(`reminder: dose ${dose} is due (${st.current?.pillCount} pills): sound, light, screen`);
    else if (st.phase === 'early') out(`dose ${dose} may be taken early on the button`);
    else if (st.phase === 'overdue') out(`dose ${dose} is overdue: the alarm centre is told`);
    else if (st.phase === 'presented') out(`dose ${dose} is in the cup: take it`);
    else if (st.phase === 'idle' && st.next) out(`waiting: next dose ${st.next.doseId}`);
  }
  if (st.phase === 'dispensing' && st.step && (changed || before?.step !== st.step)) out(`dispensing ${dose}: ${st.step}`);
  if (st.notice && st.notice !== before?.notice) out(`robot notice: ${st.notice}`);
}

function statusLine(s: DemoSystem): string {
  const st = s.controller.status();
  const sim = s.sim.status();
  return [
    `robot ${st.phase}${st.step ? ` (${st.step})` : ''}`,
    st.current ? `dose ${st.current.doseId}` : 'no open dose',
    st.next ? `next ${st.next.doseId}` : 'no next dose',
    `link ${st.link}`,
    `cup ${sim.cupPresent ? `in place, ${sim.pillsInCup} pills` : 'taken'}`,
    `alarm outbox ${s.delivery.depth()}`,
    `delivered ${s.delivery.stats.delivered}`,
  ].join(', ');
}

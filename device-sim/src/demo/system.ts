// The whole demo system wired together: alarm centre, robot (store, link, controller), simulator, delivery loop, screens.
//
// The demo command and the end-to-end tests build the system here, so what the
// tests check is what `npm start` runs. One clock drives every part, the centre
// included: at --speed 600 a signed request's timestamp must agree with the
// centre's idea of now, and an overdue dose must happen in seconds. Durations
// a person lives through in real time (sessions, re-notification, escalation,
// heartbeats) are stretched by the speed so the dashboard stays usable.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../../protocol/src/transport.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../simulator.js';
import type { FaultRates } from '../faults.js';
import { createPtyPair, keepSerialAttached, type PtyPair } from '../pty.js';
import { Random } from '../random.js';
import { addOperator, registerDevice, startAlarmCenter, type RunningAlarmCenter } from '../../../alarm-center/src/server.js';
import { DEFAULT_CONFIG, type AlarmConfig } from '../../../alarm-center/src/config.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import { SerialTransport } from '../../../hardware/src/serial-transport.js';
import type { Store } from '../../../firmware-host/src/store/store.js';
import type { Controller } from '../../../firmware-host/src/controller.js';
import type { AlarmDelivery } from '../../../firmware-host/src/alarm/delivery.js';
import { Robot, type AlarmTarget, type RobotConfig, type ScreensConfig } from '../../../firmware-host/src/robot.js';
import { localDate } from '../../../firmware-host/src/supply.js';
import { ALIVE_EVERY_MS } from '../../../firmware-host/src/power.js';
import { setPin } from '../../../firmware-host/src/screens/pin.js';
import { resolveLocalTime } from '../../../firmware-host/src/roll/local-time.js';
import { pouchLabel, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { TrackingClock } from './tracking-clock.js';

export const DEMO_DEVICE_ID = 'demo-robot';
export const DEMO_OPERATOR = { username: 'operator', password: 'demo-password' } as const;
export const DEMO_CITIZEN = 'C-DEMO';
/** The demo's pharmacy login (an administrator, so commissioning can be tried too). */
export const DEMO_STAFF = { staffId: 'demo', pin: '1234' } as const;
export const DEMO_TIME_ZONE = 'Europe/Copenhagen';
const SECRET_FILE = 'demo-device-secret';

export type DemoSystemOptions = {
  /** Where both databases live; created. */
  dataDir: string;
  /** Keep the databases of an earlier run instead of starting fresh. */
  keep?: boolean;
  /** The one clock of the whole system (a PacedClock or the SystemClock); the system never stops it. */
  clock: Clock;
  /** How many times faster than the wall clock `clock` runs; stretches the durations people live through. */
  speed: number;
  profile: HardwareProfile;
  seed: number;
  faults?: Partial<FaultRates>;
  /** `memory`: the in-memory wire on the clock; `pty`: socat pseudo-terminals and serialport (needs a real-time clock). */
  serial: 'memory' | 'pty';
  portScreen: number;
  portAlarm: number;
  host?: string;
  logger: Logger;
  timeZone?: string;
  alarmConfig?: Partial<AlarmConfig>;
  /** Called for each alarm event the centre confirmed (stored or duplicate). */
  onAlarm?: (e: { eventId: string; type: string; doseId: string | null; status: string }) => void;
};

export type DemoSystem = {
  clock: Clock;
  profile: HardwareProfile;
  sim: DeviceSimulator;
  /** The robot, as `dosis host` assembles it. */
  robot: Robot;
  link: DeviceLink;
  store: Store;
  controller: Controller;
  delivery: AlarmDelivery;
  robotDbPath: string;
  alarmDbPath: string;
  deviceId: string;
  urls: { citizen: string; pharmacy: string; alarm: string };
  /** Loads a roll into the simulated carousel and the schedule, slot i holding pouch i. */
  loadRoll(doses: readonly { intakeAtMs: number; pills: number }[], rollId: string): ScheduledPouch[];
  /** Stops the alarm centre (the robot keeps running and queues its alarms). */
  stopAlarmCentre(): Promise<void>;
  /** Starts it again on the same port and database. */
  startAlarmCentre(): Promise<void>;
  close(): Promise<void>;
};

/** The centre's timings, stretched by the speed so people at the dashboard still have real seconds to act. */
export function alarmConfigFor(speed: number, extra: Partial<AlarmConfig> = {}): Partial<AlarmConfig> {
  const s = Math.max(1, speed);
  return {
    renotifyMs: DEFAULT_CONFIG.renotifyMs * s,
    escalateAfterMs: DEFAULT_CONFIG.escalateAfterMs * s,
    remindMs: DEFAULT_CONFIG.remindMs * s,
    heartbeatIntervalMs: Math.max(DEFAULT_CONFIG.heartbeatIntervalMs, 10_000 * s),
    schedulerTickMs: DEFAULT_CONFIG.schedulerTickMs * s,
    sessionTtlMs: DEFAULT_CONFIG.sessionTtlMs * s,
    // The request's timestamp and the centre's now come from the same clock; at high speed a few wall
    // milliseconds of network are minutes of virtual time.
    signatureWindowMs: Math.max(DEFAULT_CONFIG.signatureWindowMs, 2_000 * s),
    ...extra,
  };
}

/**
 * The robot's config in the demo: the one assembly, with the durations people live through (backoff, sessions, the
 * screens' heartbeat) stretched by the speed so they stay a few wall seconds at any speed.
 */
export function demoRobotConfig(o: {
  clock: Clock; profile: HardwareProfile; logger: Logger; open: RobotConfig['open']; storePath: string; timeZone: string; speed: number;
  alarm: AlarmTarget; screens: ScreensConfig; onRollLoaded?: RobotConfig['onRollLoaded'];
}): RobotConfig {
  const s = Math.max(1, o.speed);
  return {
    clock: o.clock, profile: o.profile, logger: o.logger, open: o.open, store: { path: o.storePath }, timeZone: o.timeZone, citizenId: DEMO_CITIZEN,
    alarm: { ...o.alarm, tuning: { baseBackoffMs: 1_000 * s, maxBackoffMs: 10_000 * s, requestTimeoutMs: 10_000 * s, pollMs: 5_000 * s } },
    // The running mark is a disk write: as often in wall time as on a robot.
    aliveEveryMs: ALIVE_EVERY_MS * s,
    screens: { lang: 'da', heartbeatMs: 15_000 * s, session: { idleMs: 10 * 60_000 * s, absoluteMs: 8 * 3600_000 * s }, ...o.screens },
    ...(o.onRollLoaded ? { onRollLoaded: o.onRollLoaded } : {}),
  };
}

/** The day's demo doses: the next 08:00, 12:00, 17:00 and 21:00 (local) over `days` days, and one a minute from now. */
export function demoDoses(nowMs: number, opts: { timeZone: string; slotCount: number; seed: number; days?: number }): { intakeAtMs: number; pills: number }[] {
  const rng = new Random(opts.seed ^ 0x5eed);
  const first = Math.ceil((nowMs + 60_000) / 60_000) * 60_000;
  const times: number[] = [first];
  const days = opts.days ?? 3;
  const today = localDate(nowMs, opts.timeZone);
  const [y, m, d] = today.split('-').map(Number) as [number, number, number];
  for (let day = 0; day <= days; day++) {
    const date = new Date(Date.UTC(y, m - 1, d + day)).toISOString().slice(0, 10);
    for (const t of ['08:00', '12:00', '17:00', '21:00']) {
      const at = resolveLocalTime(date, t, opts.timeZone).atMs;
      // A dose closes when the next one's early window opens: keep the first one's 2.5 h to itself.
      if (at >= first + 150 * 60_000) times.push(at);
    }
  }
  return times.slice(0, opts.slotCount).map((intakeAtMs) => ({ intakeAtMs, pills: 1 + rng.int(8) }));
}

export async function startDemoSystem(o: DemoSystemOptions): Promise<DemoSystem> {
  const host = o.host ?? '127.0.0.1';
  const timeZone = o.timeZone ?? DEMO_TIME_ZONE;
  const clock = new TrackingClock(o.clock);
  const log = o.logger;
  mkdirSync(o.dataDir, { recursive: true });
  const robotDbPath = join(o.dataDir, 'robot.db');
  const alarmDbPath = join(o.dataDir, 'alarm-center.db');
  const secretPath = join(o.dataDir, SECRET_FILE);
  if (!o.keep) {
    for (const base of [robotDbPath, alarmDbPath]) {
      for (const suffix of ['', '-wal', '-shm', '.key']) rmSync(base + suffix, { force: true });
    }
    rmSync(secretPath, { force: true });
  }

  // ---- alarm centre
  let secret: string;
  if (existsSync(secretPath)) secret = readFileSync(secretPath, 'utf8').trim();
  else {
    secret = registerDevice(alarmDbPath, DEMO_DEVICE_ID, { clock });
    addOperator(alarmDbPath, DEMO_OPERATOR.username, 'operator', DEMO_OPERATOR.password, { clock });
    // A demo: the secret is kept beside the database so --keep can reuse it.
    writeFileSync(secretPath, `${secret}\n`, { mode: 0o600 });
  }
  const alarmConfig = alarmConfigFor(o.speed, o.alarmConfig);
  let alarmPort = o.portAlarm;
  let centre: RunningAlarmCenter | undefined = await startAlarmCenter({
    port: alarmPort, host, dbPath: alarmDbPath, clock, logger: log.child({ part: 'alarm-center' }), config: alarmConfig,
  });
  alarmPort = Number(new URL(centre.url).port);

  // ---- robot
  const cleanups: (() => void | Promise<void>)[] = [];
  const sim = new DeviceSimulator({ clock, profile: o.profile, seed: o.seed, faults: o.faults ?? {}, logger: log.child({ part: 'sim' }) });
  let pty: PtyPair | undefined;
  let openLink: () => Transport | Promise<Transport>;
  if (o.serial === 'pty') {
    pty = await createPtyPair({ dir: undefined });
    const p = pty;
    const detach = keepSerialAttached({ path: p.simPath, baudRate: o.profile.baudRate, attach: (t) => sim.attach(t), clock, logger: log.child({ part: 'sim-serial' }) });
    cleanups.push(detach);
    openLink = () => SerialTransport.open(p.hostPath, o.profile.baudRate);
  } else {
    openLink = () => {
      const [hostEnd, deviceEnd] = createMemoryWire(clock, { baudRate: o.profile.baudRate });
      sim.attach(deviceEnd);
      return hostEnd;
    };
  }
  // Watches the centre's answers so the demo can say which alarms were delivered.
  const watchingFetch: typeof globalThis.fetch = async (input, init) => {
    const res = await globalThis.fetch(input, init);
    if (o.onAlarm && res.ok && String(input).endsWith('/events/batch')) {
      try {
        const sent = (JSON.parse(String(init?.body)) as { events: { eventId: string; type: string; doseId?: string }[] }).events;
        const answer = (await res.clone().json()) as { results?: { eventId: string; status: string }[] };
        for (const r of answer.results ?? []) {
          const e = sent.find((s) => s.eventId === r.eventId);
          o.onAlarm({ eventId: r.eventId, type: e?.type ?? '?', doseId: e?.doseId ?? null, status: r.status });
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not read the centre\'s answer for the console');
      }
    }
    return res;
  };
  const loadInto = (rollId: string, pouches: readonly ScheduledPouch[]) => {
    sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    log.info({ rollId, pouches: pouches.length }, 'roll in the simulated carousel');
  };
  const robot = new Robot(demoRobotConfig({
    clock, profile: o.profile, logger: log, open: openLink, storePath: robotDbPath, timeZone, speed: o.speed,
    alarm: { url: `http://${host}:${alarmPort}`, deviceId: DEMO_DEVICE_ID, secret, fetch: watchingFetch },
    screens: { port: o.portScreen, host },
    onRollLoaded: (roll) => loadInto(roll.rollId, roll.pouches),
  }));
  const { link, store, controller } = robot;
  const delivery = robot.delivery!;
  // The demo's pharmacy login, an administrator so that commissioning can be tried too.
  if (!store.db.prepare('SELECT 1 FROM staff_pin WHERE staff_id = ?').get(DEMO_STAFF.staffId)) {
    setPin(store.db, DEMO_STAFF.staffId, DEMO_STAFF.pin, clock.now());
    store.setAdmin(DEMO_STAFF.staffId, true);
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await robot.close();
    sim.stop();
    for (const c of cleanups.reverse()) await c();
    await pty?.close();
    await centre?.close();
    centre = undefined;
    clock.close();
  };

  let urls: { citizen: string; pharmacy: string } | undefined;
  try {
    urls = await robot.listen();
    robot.start();
  } catch (err) {
    await close();
    throw err;
  }

  return {
    clock, profile: o.profile, sim, robot, link, store, controller, delivery, robotDbPath, alarmDbPath, deviceId: DEMO_DEVICE_ID,
    urls: { citizen: urls!.citizen, pharmacy: urls!.pharmacy, alarm: `http://${host}:${alarmPort}/` },
    loadRoll(doses, rollId) {
      if (doses.length > o.profile.slotCount) throw new RangeError(`a roll holds at most ${o.profile.slotCount} pouches`);
      const pouches: ScheduledPouch[] = doses.map((d, i) => ({
        rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: d.intakeAtMs, pillCount: d.pills,
      }));
      loadInto(rollId, pouches);
      controller.loadSchedule({ rollId, citizenId: DEMO_CITIZEN, pouches });
      return pouches;
    },
    async stopAlarmCentre() {
      await centre?.close();
      centre = undefined;
    },
    async startAlarmCentre() {
      if (centre || closed) return;
      centre = await startAlarmCenter({ port: alarmPort, host, dbPath: alarmDbPath, clock, logger: log.child({ part: 'alarm-center' }), config: alarmConfig });
      delivery.kick();
    },
    close,
  };
}

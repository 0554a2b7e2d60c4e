// The one assembly of the robot: store, serial link, controller, low-supply watch, running mark, device faults, alarm
// delivery and the citizen's and pharmacy's screens, built from one config object.
//
// `dosis host`, the demo and the simulator's harness all build the robot here
// and differ only in what they pass: the clock, how the serial line is opened
// (a real port, a pty, an in-memory wire), the store file, the alarm centre (or
// none) and the screens (or none). `parts` names what was assembled, so two
// entry points can be compared. The screens' modules (fastify, the roll
// validator) load when the screens open, before the dosing parts start: loading
// them blocks the event loop for a moment, which must not fall in a motion; a
// robot without screens (a soak) never loads them.

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../protocol/src/clock.js';
import type { Transport } from '../../protocol/src/transport.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import { DeviceLink } from './link/link.js';
import { Store, TIME_ZONE_META, type StoreOptions } from './store/store.js';
import { Controller, type ControllerOptions, type DosingOutcome } from './controller.js';
import { SupplyWatch } from './supply.js';
import { PowerMark, type UncleanStop } from './power.js';
import { FaultWatch } from './device-faults.js';
import { AlarmDelivery, type DeliveryOptions } from './alarm/delivery.js';
import { deviceHealth } from './alarm/health.js';
import type { ScreenLang } from './screens/server.js';
import type { CitizenView, PharmacyView, ScreenBackend, ScreenNotice } from './screens/backend.js';
import type { SessionOptions } from './screens/sessions.js';
import type { DoseTiming, ScheduledPouch } from './roll/types.js';
import { DEFAULT_TIME_ZONE } from './roll/manifest-schema.js';
import { t } from '../../protocol/src/i18n.js';

/** The alarm centre the robot reports to: its URL, this robot's id and secret; `fetch` replaces the network (an in-process centre). */
export type AlarmTarget = {
  url: string;
  deviceId: string;
  secret: string;
  fetch?: typeof globalThis.fetch;
  /** Retry and polling times of the delivery loop (a paced demo stretches them). */
  tuning?: Partial<Pick<DeliveryOptions, 'baseBackoffMs' | 'maxBackoffMs' | 'requestTimeoutMs' | 'pollMs' | 'defaultHeartbeatMs' | 'random'>>;
};

export type ScreensConfig = { port: number; host?: string; lang?: ScreenLang; heartbeatMs?: number; session?: SessionOptions };

export type RobotConfig = {
  clock: Clock;
  profile: HardwareProfile;
  logger: Logger;
  /** Opens the host's end of the serial line; called again on every reconnect. */
  open: () => Transport | Promise<Transport>;
  /** The SQLite file (':memory:' for soaks and fast tests, or an image of a store: see Store.open) and its options. */
  store: { path: string | Buffer } & Omit<StoreOptions, 'clock'>;
  /** Where alarms go; null: this robot is not connected to an alarm centre (its screens say so). */
  alarm: AlarmTarget | null;
  /** The screens' HTTP server; null: no screens. */
  screens: ScreensConfig | null;
  /** The robot's zone (daily figures, low-supply days, screens); Europe/Copenhagen by default. */
  timeZone?: string;
  /** The citizen this robot serves; when absent, the loaded roll's citizen. */
  citizenId?: string;
  timing?: Partial<DoseTiming>;
  /** QA only: replaces the controller's verdict rules. */
  judge?: ControllerOptions['judge'];
  /** Sees every step of every dose machine (the soak counts which transitions ran). */
  inspect?: ControllerOptions['inspect'];
  /** Called after the pharmacy screen loaded a roll (the demo fills the simulated carousel here). */
  onRollLoaded?: (roll: { rollId: string; citizenId: string; pouches: ScheduledPouch[] }) => void;
  /** How often the running mark is refreshed. */
  aliveEveryMs?: number;
  /** How long a lost serial link may stay lost before it is a device fault. */
  linkLostFaultAfterMs?: number;
};

/** What the screens show about the robot itself, besides the dosing: each in both languages, from the message catalogue. */
export type RobotNotice = ScreenNotice;

type Fatal = (err: Error) => void;

/** How soon a controller error the store could not take is tried again. */
const RECORD_RETRY_MS = 1_000;

export class Robot {
  readonly clock: Clock;
  readonly profile: HardwareProfile;
  readonly store: Store;
  readonly link: DeviceLink;
  readonly controller: Controller;
  readonly supply: SupplyWatch;
  readonly faults: FaultWatch;
  /** Only on a durable store (a file, or an image of one): a private in-memory one does not outlive the process. */
  readonly power: PowerMark | undefined;
  readonly delivery: AlarmDelivery | undefined;
  /** The screens' server, once `listen()` has opened it. */
  screens: FastifyInstance | undefined;
  /** The parts assembled, in start order. */
  readonly parts: readonly string[];
  /** The unclean stop found at start, if any. */
  uncleanStop: UncleanStop | undefined;
  urls: { citizen: string; pharmacy: string } | undefined;
  readonly #config: RobotConfig;
  readonly #log: Logger;
  readonly #fatal = new Set<Fatal>();
  #backend: Promise<ScreenBackend> | undefined;
  /** A controller error not yet in the store (the store itself may be what failed): retried until it is. */
  #unrecorded: Error | undefined;
  #started = false;
  #closed = false;

  constructor(c: RobotConfig) {
    this.#config = c;
    this.clock = c.clock;
    this.profile = c.profile;
    const log = (this.#log = c.logger);
    const timeZone = c.timeZone ?? DEFAULT_TIME_ZONE;
    const clock = c.clock;
    // Serial timing can put fractions of a millisecond on a paced clock; the store and the centre keep whole ones.
    const storeClock: Clock = { now: () => Math.floor(clock.now()), setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h) };
    const { path, ...storeOptions } = c.store;
    this.store = Store.open(path, { ...storeOptions, clock: storeClock, timing: c.timing ?? storeOptions.timing });
    // The commands staff run on this database (roll load, robot pause, ...) print their receipts in the robot's zone.
    if (this.store.getMeta(TIME_ZONE_META) !== timeZone) this.store.setMeta(TIME_ZONE_META, timeZone);
    this.link = new DeviceLink({ clock, profile: c.profile, logger: log.child({ part: 'link' }), open: c.open });
    this.controller = new Controller({ clock, link: this.link, store: this.store, profile: c.profile, logger: log.child({ part: 'controller' }), timing: c.timing, judge: c.judge, inspect: c.inspect });
    this.supply = new SupplyWatch({ store: this.store, clock, logger: log.child({ part: 'supply' }), timeZone });
    this.faults = new FaultWatch({ store: this.store, link: this.link, clock, logger: log.child({ part: 'faults' }), linkLostAfterMs: c.linkLostFaultAfterMs });
    this.power = this.store.durable ? new PowerMark({ store: this.store, clock, logger: log.child({ part: 'power' }), everyMs: c.aliveEveryMs }) : undefined;
    if (c.alarm) {
      const a = c.alarm;
      this.delivery = new AlarmDelivery({
        db: this.store.db, clock, url: a.url, deviceId: a.deviceId, secret: a.secret, logger: log.child({ part: 'delivery' }), ...a.tuning,
        ...(a.fetch ? { fetch: a.fetch } : {}),
        health: () => deviceHealth({ store: this.store, link: this.link, nowMs: clock.now(), timeZone, mcuFault: this.faults.has('mcu') }),
      });
    } else {
      log.warn('no alarm centre configured: missed doses and faults stay in this robot\'s outbox');
    }
    this.parts = [
      'store', ...(this.power ? ['running-mark'] : []), 'fault-watch', 'link', 'controller', 'supply-watch',
      ...(this.delivery ? ['alarm-delivery'] : []), ...(c.screens ? ['screen-backend', 'screens'] : []),
    ];

    this.controller.on('outcome', () => this.supply.nudge());
    this.controller.on('failure', (err) => this.#controllerFailed(err));
    const delivery = this.delivery;
    if (delivery) {
      // A dose ending or going overdue, a fault, a supply check: each may have queued an event, so the loop looks now.
      // (Only with a centre: a status listener makes the controller build its status at every step.)
      this.controller.on('outcome', () => delivery.kick());
      this.controller.on('status', () => delivery.kick());
      // The centre's view of the robot's health follows the link and the faults at once, not at the next interval.
      this.link.on('state', (st) => {
        if (st === 'ready' || st === 'lost') delivery.heartbeatNow();
      });
      this.faults.onChange(() => {
        delivery.kick();
        delivery.heartbeatNow();
      });
    }
  }

  /** Registers a listener for an error the robot cannot run on: the process should stop (non-zero) and be restarted. */
  onFatal(listener: Fatal): () => void {
    this.#fatal.add(listener);
    return () => this.#fatal.delete(listener);
  }

  /** What the screens show and do, over the controller and the store, with the robot's own notices; built on first use. */
  backend(): Promise<ScreenBackend> {
    return (this.#backend ??= (async () => {
      const { createControllerBackend } = await import('./screens/controller-backend.js');
      const c = this.#config;
      const inner = createControllerBackend({
        controller: this.controller, store: this.store, clock: this.clock, profile: c.profile, link: this.link, logger: this.#log.child({ part: 'backend' }),
        timeZone: c.timeZone ?? DEFAULT_TIME_ZONE,
        ...(c.citizenId !== undefined ? { citizenId: c.citizenId } : {}), ...(c.onRollLoaded ? { onLoaded: c.onRollLoaded } : {}),
      });
      return withNotices(inner, () => this.notices(), (l) => this.faults.onChange(l));
    })());
  }

  /** Starts every part but the screens (open them first: see listen); the controller reconciles with the MCU before any motion. */
  start(): this {
    if (this.#started) return this;
    this.#started = true;
    this.uncleanStop = this.power?.start();
    this.faults.start();
    this.link.start();
    this.controller.start();
    this.supply.start();
    this.delivery?.start();
    this.#log.info({ parts: this.parts }, 'robot started');
    return this;
  }

  /** Opens the screens' server; returns their URLs (none without screens). */
  async listen(): Promise<{ citizen: string; pharmacy: string } | undefined> {
    const s = this.#config.screens;
    if (!s || this.screens || this.#closed) return this.urls;
    const backend = await this.backend();
    const { createScreenServer } = await import('./screens/server.js');
    if (this.#closed) return undefined;
    this.screens = createScreenServer({
      backend, db: this.store.db, clock: this.clock, logger: this.#log.child({ part: 'screens' }), lang: s.lang ?? 'da',
      ...(s.heartbeatMs !== undefined ? { heartbeatMs: s.heartbeatMs } : {}), ...(s.session ? { session: s.session } : {}),
    });
    const host = s.host ?? '127.0.0.1';
    await this.screens.listen({ port: s.port, host });
    const port = (this.screens.server.address() as { port: number }).port;
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.urls = { citizen: `${base}/`, pharmacy: `${base}/pharmacy` };
    return this.urls;
  }

  /** What the screens say about the robot itself. */
  notices(): RobotNotice[] {
    const out: RobotNotice[] = [];
    if (this.faults.has('controller')) out.push({ code: 'device_fault', text: both('robot.deviceFault') });
    if (!this.delivery) out.push({ code: 'no_alarm_centre', text: both('robot.noAlarmCentre') });
    return out;
  }

  /** Waits until a controller error is recorded and the outbox is empty, or `timeoutMs` passed on the clock; true when both. */
  drained(timeoutMs: number): Promise<boolean> {
    const d = this.delivery;
    const end = this.clock.now() + timeoutMs;
    d?.kick();
    return new Promise((resolve) => {
      const look = () => {
        if (!this.#unrecorded && (!d || d.depth() === 0)) return resolve(true);
        if (this.clock.now() >= end) return resolve(false);
        this.clock.setTimeout(look, 100);
      };
      look();
    });
  }

  /** A clean stop: every part stopped, the running mark cleared, the store closed. Synchronous when there are no screens. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.delivery?.stop();
    this.supply.stop();
    this.faults.stop();
    this.controller.stop();
    if (this.screens) await this.screens.close().catch((err: Error) => this.#log.warn({ err: err.message }, 'closing the screens'));
    this.link.close();
    this.power?.stop();
    this.store.close();
  }

  #controllerFailed(err: Error): void {
    // Recorded (event log and outbox, one transaction), shown on both screens, then the process is to stop.
    this.#log.fatal({ err }, 'the dose controller failed: dispensing stopped');
    this.#unrecorded = err;
    this.#recordControllerError();
    for (const l of this.#fatal) l(err);
  }

  #recordControllerError(): void {
    const err = this.#unrecorded;
    if (!err || this.#closed) return;
    try {
      const detail = { error: err.name.slice(0, 60) };
      // Failing again while the fault of an earlier run is still open: the centre knows; the event log gets the repeat.
      if (!this.faults.raise('controller', 'controller_error', detail)) this.store.log('controller_error', null, detail);
      this.#unrecorded = undefined;
      this.delivery?.kick();
    } catch (e) {
      this.#log.error({ err: e }, 'could not record the controller error: trying again');
      this.clock.setTimeout(() => this.#recordControllerError(), RECORD_RETRY_MS);
    }
  }
}

const both = (key: string) => ({ da: t('da', key), en: t('en', key) });

/**
 * The screens' backend with the robot's own notices: a controller error turns the citizen's screen to an error, and
 * both views carry the notices; a fault raised or cleared is pushed to the open screens at once.
 */
function withNotices(inner: ScreenBackend, notices: () => RobotNotice[], onChange: (l: () => void) => void): ScreenBackend {
  const citizen = (v: CitizenView): CitizenView => {
    const n = notices();
    if (n.length === 0) return v;
    const fault = n.some((x) => x.code === 'device_fault');
    // The centre hears of a fault, when there is one to tell: the screen says the staff know only then.
    const told = !n.some((x) => x.code === 'no_alarm_centre');
    return fault ? { ...v, phase: 'error', error: { reason: 'device_fault', staffTold: told }, dispensing: null, reminder: false, notices: n } : { ...v, notices: n };
  };
  const listeners = new Set<(v: CitizenView) => void>();
  onChange(() => {
    const v = citizen(inner.citizenView());
    for (const l of [...listeners]) l(v);
  });
  return {
    ...inner,
    citizenView: () => citizen(inner.citizenView()),
    onCitizenView(listener) {
      listeners.add(listener);
      const off = inner.onCitizenView((v) => listener(citizen(v)));
      return () => {
        listeners.delete(listener);
        off();
      };
    },
    pharmacyView(): PharmacyView {
      const v = inner.pharmacyView();
      const n = notices();
      return n.length === 0 ? v : { ...v, notices: n };
    },
    pressButton: () => inner.pressButton(),
    validateRoll: (m) => inner.validateRoll(m),
    loadRoll: (m, s) => inner.loadRoll(m, s),
    unloadRoll: (s) => inner.unloadRoll(s),
  };
}

/** Builds the robot, opens its screens, then starts it. */
export async function startRobot(c: RobotConfig): Promise<Robot> {
  const robot = new Robot(c);
  try {
    await robot.listen();
  } catch (err) {
    await robot.close();
    throw err;
  }
  return robot.start();
}

/** One line per finished dose, for a terminal: ids, counts and classes only (no names, no drugs). */
export function outcomeLine(o: DosingOutcome): string {
  const count = o.countedPills === null ? '' : ` counted ${o.countedPills}/${o.expectedPills}`;
  return `dose ${o.doseId}: ${o.final}${o.cls ? ` (${o.cls})` : ''}${count}${o.reason ? ` reason ${o.reason}` : ''}${o.attempts > 1 ? ` attempts ${o.attempts}` : ''}`;
}

// The whole robot in one process against a simulated MCU on an in-memory wire, on one clock.
//
// The robot is the one assembly `dosis host` runs (firmware-host/src/robot.ts);
// the harness adds the simulator on the far end of the wire. Tests and soaks
// build it on a manual clock and a private in-memory store; screens and the
// alarm centre are off unless asked for (`alarm` takes a target such as a
// fetch bound to an in-process alarm centre app).

import pino, { type Logger } from 'pino';
import { ManualClock, type Clock } from '../../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../../protocol/src/transport.js';
import { loadProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../simulator.js';
import type { FaultRates } from '../faults.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import type { Store } from '../../../firmware-host/src/store/store.js';
import type { Controller, ControllerOptions, DosingOutcome } from '../../../firmware-host/src/controller.js';
import { Robot, type AlarmTarget, type ScreensConfig } from '../../../firmware-host/src/robot.js';
import { pouchLabel, type DoseTiming, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';

export type HarnessOptions = {
  seed: number;
  faults?: Partial<FaultRates>;
  clock?: Clock;
  profile?: HardwareProfile;
  /** SQLite file; ':memory:' (the default) for soaks and fast tests. */
  dbPath?: string;
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  timing?: Partial<DoseTiming>;
  logger?: Logger;
  /** First command number of a new store (deterministic runs). */
  firstCommandNumber?: number;
  /** QA only: a replacement for the controller's verdict rules. */
  judge?: ControllerOptions['judge'];
  /**
   * The host's end of the serial line, for a real port (a pty pair); the
   * caller then attaches the simulator to the other end. Default: an
   * in-memory wire with the simulator on its far end.
   */
  open?: () => Transport | Promise<Transport>;
  /** The alarm centre the robot reports to; none by default. */
  alarm?: AlarmTarget | null;
  /** The screens' server (started by `listen()`); none by default. */
  screens?: ScreensConfig | null;
  timeZone?: string;
  citizenId?: string;
};

export type HarnessDose = { intakeAtMs: number; pills: number };

export class SimHarness {
  readonly clock: Clock;
  readonly profile: HardwareProfile;
  readonly sim: DeviceSimulator;
  readonly robot: Robot;
  readonly link: DeviceLink;
  readonly store: Store;
  readonly controller: Controller;
  readonly outcomes: DosingOutcome[] = [];
  #wire: [Transport, Transport] | undefined;
  #rolls = 0;

  constructor(opts: HarnessOptions) {
    const logger = opts.logger ?? pino({ level: 'silent' });
    this.clock = opts.clock ?? new ManualClock();
    this.profile = opts.profile ?? loadProfile('dosis-r1');
    this.sim = new DeviceSimulator({ clock: this.clock, profile: this.profile, seed: opts.seed, faults: opts.faults ?? {}, logger: logger.child({ part: 'sim' }) });
    this.robot = new Robot({
      clock: this.clock, profile: this.profile, logger,
      open: opts.open ?? (() => {
        // Each (re)open is a fresh cable: the simulator is re-attached to its far end.
        this.#wire = createMemoryWire(this.clock, { baudRate: this.profile.baudRate });
        this.sim.attach(this.#wire[1]);
        return this.#wire[0];
      }),
      store: { path: opts.dbPath ?? ':memory:', synchronous: opts.synchronous ?? 'FULL', firstCommandNumber: opts.firstCommandNumber ?? (opts.seed & 0xffffff) },
      alarm: opts.alarm ?? null,
      screens: opts.screens ?? null,
      ...(opts.timing ? { timing: opts.timing } : {}),
      ...(opts.judge ? { judge: opts.judge } : {}),
      ...(opts.timeZone ? { timeZone: opts.timeZone } : {}),
      ...(opts.citizenId ? { citizenId: opts.citizenId } : {}),
      onRollLoaded: (roll) => this.sim.loadPouches(roll.pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount }))),
    });
    this.link = this.robot.link;
    this.store = this.robot.store;
    this.controller = this.robot.controller;
    this.controller.on('outcome', (o) => this.outcomes.push(o));
  }

  start(): this {
    this.robot.start();
    return this;
  }

  /** Starts the screens' server, when the harness has screens; their URLs. */
  listen(): Promise<{ citizen: string; pharmacy: string } | undefined> {
    return this.robot.listen();
  }

  /**
   * Loads a roll of `doses` into both the simulated carousel (the physical
   * pouches) and the controller's schedule, slot i holding dose i.
   */
  loadRoll(doses: readonly HarnessDose[], rollId = `R${++this.#rolls}`, citizenId = 'C1'): ScheduledPouch[] {
    if (doses.length > this.profile.slotCount) throw new RangeError(`a roll holds at most ${this.profile.slotCount} pouches`);
    const pouches: ScheduledPouch[] = doses.map((d, i) => ({
      rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: d.intakeAtMs, pillCount: d.pills,
    }));
    this.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    this.controller.loadSchedule({ rollId, citizenId, pouches });
    return pouches;
  }

  /** Runs a manual clock until `done` or `limitMs` of virtual time passed; returns whether `done` held. */
  runUntil(done: () => boolean, limitMs: number): boolean {
    if (!(this.clock instanceof ManualClock)) throw new TypeError('runUntil needs a ManualClock');
    return this.clock.runUntil(done, limitMs);
  }

  /** Stops the robot (synchronously when it has no screens; the promise settles when they are closed) and the simulator. */
  stop(): Promise<void> {
    const closed = this.robot.close();
    this.sim.stop();
    return closed;
  }
}

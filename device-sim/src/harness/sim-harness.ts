// The whole robot in one process: controller, store, link and a simulated MCU on an in-memory wire, on one clock.
//
// Tests, the soak and the demo all build the robot this way; only the clock
// (manual for tests and soaks, paced for the demo) and the store file differ.

import pino, { type Logger } from 'pino';
import { ManualClock, type Clock } from '../../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../../protocol/src/transport.js';
import { loadProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../simulator.js';
import type { FaultRates } from '../faults.js';
import { DeviceLink } from '../../../firmware-host/src/link/link.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { Controller, type ControllerOptions, type DosingOutcome } from '../../../firmware-host/src/controller.js';
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
};

export type HarnessDose = { intakeAtMs: number; pills: number };

export class SimHarness {
  readonly clock: Clock;
  readonly profile: HardwareProfile;
  readonly sim: DeviceSimulator;
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
    this.link = new DeviceLink({
      clock: this.clock, profile: this.profile, logger: logger.child({ part: 'link' }),
      open: opts.open ?? (() => {
        // Each (re)open is a fresh cable: the simulator is re-attached to its far end.
        this.#wire = createMemoryWire(this.clock, { baudRate: this.profile.baudRate });
        this.sim.attach(this.#wire[1]);
        return this.#wire[0];
      }),
    });
    this.store = Store.open(opts.dbPath ?? ':memory:', {
      clock: this.clock, synchronous: opts.synchronous ?? 'FULL', timing: opts.timing, firstCommandNumber: opts.firstCommandNumber ?? (opts.seed & 0xffffff),
    });
    this.controller = new Controller({ clock: this.clock, link: this.link, store: this.store, profile: this.profile, logger: logger.child({ part: 'controller' }), timing: opts.timing, judge: opts.judge });
    this.controller.on('outcome', (o) => this.outcomes.push(o));
  }

  start(): this {
    this.link.start();
    this.controller.start();
    return this;
  }

  /**
   * Loads a roll of `doses` into both the simulated carousel (the physical
   * pouches) and the controller's schedule, slot i holding dose i.
   */
  loadRoll(doses: readonly HarnessDose[], rollId = `R${++this.#rolls}`): ScheduledPouch[] {
    if (doses.length > this.profile.slotCount) throw new RangeError(`a roll holds at most ${this.profile.slotCount} pouches`);
    const pouches: ScheduledPouch[] = doses.map((d, i) => ({
      rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: d.intakeAtMs, pillCount: d.pills,
    }));
    this.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    this.controller.loadSchedule({ rollId, citizenId: 'C1', pouches });
    return pouches;
  }

  /** Runs a manual clock until `done` or `limitMs` of virtual time passed; returns whether `done` held. */
  runUntil(done: () => boolean, limitMs: number): boolean {
    if (!(this.clock instanceof ManualClock)) throw new TypeError('runUntil needs a ManualClock');
    return this.clock.runUntil(done, limitMs);
  }

  stop(): void {
    this.controller.stop();
    this.link.close();
    this.sim.stop();
    this.store.close();
  }
}

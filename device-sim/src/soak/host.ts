// The host side of a soak robot (the robot assembly of firmware-host/src/robot.ts) as one process that can die at any
// moment and boot again.
//
// A crash abandons the host's objects as they are, as a power cut would: its
// clock wrapper stops every timer they armed and arms none after, the MCU stops
// hearing from them, and the SQLite connection is left as it was. The next boot
// opens a new store on what the dead one committed (the same file, or on the
// memory transport an image of the store), a new cable to the same simulator,
// and a new robot, which reconciles with the MCU before it moves anything. The
// simulator (the physical robot), the citizen and the world clock go on
// throughout.

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { Transport } from '../../../protocol/src/transport.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import type { Store } from '../../../firmware-host/src/store/store.js';
import type { Controller, ControllerOptions } from '../../../firmware-host/src/controller.js';
import type { DoseTiming } from '../../../firmware-host/src/roll/types.js';
import { Robot, type AlarmTarget } from '../../../firmware-host/src/robot.js';

/** The timer a dead process gets: never armed. */
const DEAD_TIMER: TimerHandle = Object.freeze({ id: -1 });

/** The host process's view of time: once the process dies, none of its timers fire again, and it arms none. */
export class ProcessClock implements Clock {
  #alive = true;
  readonly #pending = new Set<TimerHandle>();
  constructor(private readonly world: Clock) {}
  now(): number {
    return this.world.now();
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    // What a dead process's code still asks for (its link going down under it) never reaches the world's clock.
    if (!this.#alive) return DEAD_TIMER;
    const h = this.world.setTimeout(() => {
      this.#pending.delete(h);
      if (this.#alive) fn();
    }, delayMs);
    this.#pending.add(h);
    return h;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    // Only this process's own pending timers (die() has cleared the rest from the world's clock).
    if (!handle || !this.#pending.delete(handle)) return;
    this.world.clearTimeout(handle);
  }
  die(): void {
    this.#alive = false;
    for (const h of this.#pending) this.world.clearTimeout(h);
    this.#pending.clear();
  }
}

export type HostOptions = {
  world: Clock;
  profile: HardwareProfile;
  /** The store's file, ':memory:' for a host that never crashes, or the image of the store a dead host left (Store.image). */
  dbPath: string | Buffer;
  timing?: Partial<DoseTiming> | undefined;
  logger: Logger;
  firstCommandNumber: number;
  /** The host's end of a new cable to the simulator. */
  open: (clock: Clock) => Transport | Promise<Transport>;
  /** The alarm centre (null: none; its outbox is then what the centre would have got). */
  alarm: ((clock: Clock) => AlarmTarget) | null;
  /** Test builds of the controller: deliberate faults to prove the referee catches them; the soak's transition counter. */
  controller?: Pick<ControllerOptions, 'judge' | 'inspect'>;
  /** Changes each new host before it starts (test builds that change what the controller hears or does). */
  wrap?: (c: Controller, h: HostProcess) => void;
};

export type HostProcess = { clock: ProcessClock; link: DeviceLink; store: Store; controller: Controller; robot: Robot };

/** Boots a host process: the robot assembly on its store, no screens, started. */
export function bootHost(o: HostOptions): HostProcess {
  const clock = new ProcessClock(o.world);
  const robot = new Robot({
    clock, profile: o.profile, logger: o.logger, open: () => o.open(clock),
    store: { path: o.dbPath, synchronous: 'OFF', timing: o.timing, firstCommandNumber: o.firstCommandNumber },
    alarm: o.alarm ? o.alarm(clock) : null, screens: null, timing: o.timing, judge: o.controller?.judge, inspect: o.controller?.inspect,
  });
  const h = { clock, link: robot.link, store: robot.store, controller: robot.controller, robot };
  o.wrap?.(robot.controller, h);
  robot.start();
  return h;
}

// The host side of a soak robot (store, link, controller) as one process that can die at any moment and boot again.
//
// A crash abandons the host's objects as they are, as a power cut would: its
// clock wrapper stops every timer they armed, the MCU stops hearing from them,
// and the SQLite connection is left as it was. The next boot opens a new store
// on the same file, a new cable to the same simulator, and a new controller,
// which reconciles with the MCU before it moves anything. The simulator (the
// physical robot), the citizen and the world clock go on throughout.

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { Transport } from '../../../protocol/src/transport.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceLink } from '../../../firmware-host/src/link/link.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { Controller, type ControllerOptions } from '../../../firmware-host/src/controller.js';
import type { DoseTiming } from '../../../firmware-host/src/roll/types.js';

/** The host process's view of time: once the process dies, none of its timers fire again. */
export class ProcessClock implements Clock {
  #alive = true;
  readonly #pending = new Set<TimerHandle>();
  constructor(private readonly world: Clock) {}
  now(): number {
    return this.world.now();
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const h = this.world.setTimeout(() => {
      this.#pending.delete(h);
      if (this.#alive) fn();
    }, delayMs);
    this.#pending.add(h);
    return h;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    this.#pending.delete(handle);
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
  /** The store's file, or ':memory:' for a host that never crashes. */
  dbPath: string;
  timing?: Partial<DoseTiming> | undefined;
  logger: Logger;
  firstCommandNumber: number;
  /** The host's end of a new cable to the simulator. */
  open: (clock: Clock) => Transport | Promise<Transport>;
  /** Test builds of the controller: deliberate faults to prove the referee catches them. */
  controller?: Pick<ControllerOptions, 'judge' | 'inspect'>;
  /** Wraps each new controller (test builds that change what it hears or does). */
  wrap?: (c: Controller, h: HostProcess) => void;
};

export type HostProcess = { clock: ProcessClock; link: DeviceLink; store: Store; controller: Controller };

/** Boots a host process: store on the file, link, controller, started. */
export function bootHost(o: HostOptions): HostProcess {
  const clock = new ProcessClock(o.world);
  const store = Store.open(o.dbPath, { clock, synchronous: 'OFF', timing: o.timing, firstCommandNumber: o.firstCommandNumber });
  const link = new DeviceLink({ clock, profile: o.profile, logger: o.logger.child({ part: 'link' }), open: () => o.open(clock) });
  const controller = new Controller({ clock, link, store, profile: o.profile, logger: o.logger.child({ part: 'controller' }), timing: o.timing, ...o.controller });
  const h = { clock, link, store, controller };
  o.wrap?.(controller, h);
  link.start();
  controller.start();
  return h;
}

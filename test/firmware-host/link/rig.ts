// Test rig: the host's DeviceLink and a real DeviceSimulator on the two ends of an in-memory serial wire.
import pino from 'pino';
import { ManualClock } from '../../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../../protocol/src/transport.js';
import type { Command, CommandName, DeviceEvent } from '../../../protocol/src/catalogue.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import type { FaultRates } from '../../../device-sim/src/faults.js';
import { pouchLabel } from '../../../firmware-host/src/roll/types.js';
import { DeviceLink, type SendResult } from '../../../firmware-host/src/link/link.js';

export const silent = pino({ level: 'silent' });

export class LinkRig {
  readonly clock = new ManualClock();
  readonly profile = loadProfile('dosis-r1');
  readonly sim: DeviceSimulator;
  readonly link: DeviceLink;
  readonly events: DeviceEvent[] = [];
  /** The wire ends now in use: [host side, device side]. */
  ends: [Transport, Transport];
  opens = 0;

  constructor(opts: { seed?: number; faults?: Partial<FaultRates>; pills?: number } = {}) {
    this.ends = createMemoryWire(this.clock, { baudRate: this.profile.baudRate });
    this.sim = new DeviceSimulator({
      clock: this.clock, transport: this.ends[1], profile: this.profile, seed: opts.seed ?? 1, faults: opts.faults ?? {}, logger: silent,
    });
    this.sim.loadPouches(
      Array.from({ length: this.profile.slotCount }, (_, slot) => ({ slot, label: pouchLabel('T', slot + 1), pills: opts.pills ?? 3 })),
    );
    this.link = new DeviceLink({
      clock: this.clock, profile: this.profile, logger: silent,
      open: () => {
        this.opens++;
        if (this.opens > 1) {
          // A re-plug: a fresh wire, the simulator re-attached to its far end.
          this.ends = createMemoryWire(this.clock, { baudRate: this.profile.baudRate });
          this.sim.attach(this.ends[1]);
        }
        return this.ends[0];
      },
    });
    this.link.on('event', (e) => this.events.push(e));
  }

  start(): this {
    this.link.start();
    if (!this.clock.runUntil(() => this.link.state === 'ready', 10_000)) throw new Error(`link not ready: ${this.link.state}`);
    return this;
  }

  /** Sends and runs the clock until the answer. */
  send<N extends CommandName>(cmd: Extract<Command, { name: N }>, limitMs = 30_000): SendResult<N> {
    let result: SendResult<N> | undefined;
    this.link.send(cmd, (r) => (result = r));
    if (!this.clock.runUntil(() => result !== undefined, limitMs)) throw new Error(`no answer to ${cmd.name}`);
    return result!;
  }

  /** Runs until an event matching `pred` arrives (counting from `from`), or throws. */
  waitEvent(pred: (e: DeviceEvent) => boolean, from = 0, limitMs = 30_000): DeviceEvent {
    let found: DeviceEvent | undefined;
    this.clock.runUntil(() => (found = this.events.slice(from).find(pred)) !== undefined, limitMs);
    if (!found) throw new Error('event never came');
    return found;
  }

  stop(): void {
    this.link.close();
    this.sim.stop();
  }
}

export function commandId(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

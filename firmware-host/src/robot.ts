// The robot as it runs on its board: serial link to the MCU, the store file, the controller; printed outcomes.
import type { Logger } from 'pino';
import { SystemClock, type Clock } from '../../protocol/src/clock.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import { DeviceLink } from './link/link.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';
import { Store } from './store/store.js';
import { Controller, type DosingOutcome } from './controller.js';
import { SupplyWatch } from './supply.js';

export type RobotOptions = { port: string; dbPath: string; profile: HardwareProfile; logger: Logger; clock?: Clock };

export type Robot = { clock: Clock; link: DeviceLink; store: Store; controller: Controller; supply: SupplyWatch; close(): void };

/** Opens the store (created and migrated if new) and starts link, controller and the low-supply watch; the controller reconciles before any motion. */
export function startRobot(o: RobotOptions): Robot {
  const clock = o.clock ?? new SystemClock();
  const store = Store.open(o.dbPath, { clock });
  const link = new DeviceLink({ clock, profile: o.profile, logger: o.logger.child({ part: 'link' }), open: () => SerialTransport.open(o.port, o.profile.baudRate) });
  const controller = new Controller({ clock, link, store, profile: o.profile, logger: o.logger.child({ part: 'controller' }) });
  // Low supply: an alarm-centre event once a day while the roll holds fewer than 3 days; looked at hourly and after each dose.
  const supply = new SupplyWatch({ store, clock, logger: o.logger.child({ part: 'supply' }) });
  controller.on('outcome', () => supply.nudge());
  link.start();
  controller.start();
  supply.start();
  return {
    clock, link, store, controller, supply,
    close() {
      supply.stop();
      controller.stop();
      link.close();
      store.close();
    },
  };
}

/** One line per finished dose, for a terminal: ids, counts and classes only (no names, no drugs). */
export function outcomeLine(o: DosingOutcome): string {
  const count = o.countedPills === null ? '' : ` counted ${o.countedPills}/${o.expectedPills}`;
  return `dose ${o.doseId}: ${o.final}${o.cls ? ` (${o.cls})` : ''}${count}${o.reason ? ` reason ${o.reason}` : ''}${o.attempts > 1 ? ` attempts ${o.attempts}` : ''}`;
}

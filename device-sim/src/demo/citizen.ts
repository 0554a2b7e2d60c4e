// The demo's simulated citizen: presses the button some minutes after a dose is due, takes the cup, puts it back; forgets some doses.
import { Random } from '../random.js';
import type { Clock } from '../../../protocol/src/clock.js';
import type { DeviceSimulator } from '../simulator.js';
import type { Controller, ControllerStatus, DosingOutcome } from '../../../firmware-host/src/controller.js';

export type CitizenOptions = {
  clock: Clock;
  sim: DeviceSimulator;
  controller: Controller;
  seed: number;
  /** Fraction of doses the citizen never presses the button for. */
  forgetRate: number;
  /** Tells the console what the citizen does. */
  say: (line: string) => void;
};

const MIN = 60_000;

export class SimulatedCitizen {
  readonly #o: CitizenOptions;
  readonly #rng: Random;
  readonly #seenDue = new Set<string>();
  readonly #seenPresented = new Set<string>();
  #enabled = true;
  readonly #onStatus = (s: ControllerStatus) => this.#status(s);
  readonly #onOutcome = (o: DosingOutcome) => this.#outcome(o);

  constructor(o: CitizenOptions) {
    this.#o = o;
    this.#rng = new Random(o.seed ^ 0xc171);
    o.controller.on('status', this.#onStatus);
    o.controller.on('outcome', this.#onOutcome);
  }

  stop(): void {
    this.#enabled = false;
    this.#o.controller.off('status', this.#onStatus);
    this.#o.controller.off('outcome', this.#onOutcome);
  }

  /** Presses the robot's button now (the `press` command). */
  press(): void {
    this.#o.say('citizen presses the button');
    this.#o.sim.pressButton();
  }

  /** Takes the cup now and puts it back a little later (the `take` command). */
  take(): void {
    if (!this.#o.sim.cupPresent) {
      this.#o.say('the cup is not in the robot');
      return;
    }
    this.#o.say('citizen takes the cup');
    this.#o.sim.takeCup();
    this.#after(this.#rng.between(1, 3) * MIN, () => {
      this.#o.say('citizen puts the cup back');
      this.#o.sim.placeCup();
    });
  }

  #after(ms: number, fn: () => void): void {
    this.#o.clock.setTimeout(() => {
      if (this.#enabled) fn();
    }, ms);
  }

  #status(s: ControllerStatus): void {
    const dose = s.current?.doseId;
    if (!dose) return;
    if (s.phase === 'due' && !this.#seenDue.has(dose)) {
      this.#seenDue.add(dose);
      if (this.#rng.chance(this.#o.forgetRate)) {
        this.#o.say(`(the citizen will forget dose ${dose})`);
        return;
      }
      const delay = this.#rng.between(0, 10) * MIN;
      this.#after(delay, () => {
        const now = this.#o.controller.status();
        if (now.current?.doseId === dose && (now.phase === 'due' || now.phase === 'overdue' || now.phase === 'early')) this.press();
      });
    } else if (s.phase === 'presented' && !this.#seenPresented.has(dose)) {
      this.#seenPresented.add(dose);
      this.#after(this.#rng.between(5, 30) * 1000, () => this.take());
    }
  }

  #outcome(o: DosingOutcome): void {
    // A yellow dose may have left pills in the cup: the citizen empties it (the robot shows the error until then).
    if (o.final === 'failed' && o.cls === 'yellow') this.#after(this.#rng.between(1, 5) * MIN, () => this.take());
  }
}

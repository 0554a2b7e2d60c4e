// The demo's simulated citizen: the shared one (world/citizen.ts), given an intent for each dose as it falls due.
//
// When a dose falls due the citizen decides, from the demo's seed, whether to
// forget it, when to press (0–10 minutes after it fell due) and how long to
// take to lift the cup (5–30 s); from then on the shared citizen acts on what
// the robot shows. A yellow dose may leave pills in the cup: the care staff
// empty it a few minutes later (world/staff.ts, as in the soak).
import { Random } from '../random.js';
import type { Clock } from '../../../protocol/src/clock.js';
import type { DeviceSimulator } from '../simulator.js';
import type { Controller, ControllerStatus, DosingOutcome } from '../../../firmware-host/src/controller.js';
import { Citizen } from '../world/citizen.js';
import { staffTakeCup } from '../world/staff.js';

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
const SAY: Record<string, string> = {
  press: 'citizen presses the button',
  lift: 'citizen takes the cup',
  place: 'citizen puts the cup back',
  carry_away: 'citizen carries the cup away',
  empty: 'citizen empties the cup',
};

export class SimulatedCitizen {
  readonly #o: CitizenOptions;
  readonly #rng: Random;
  readonly #citizen: Citizen;
  readonly #seenDue = new Set<string>();
  #enabled = true;
  readonly #onStatus = (s: ControllerStatus) => this.#status(s);
  readonly #onOutcome = (o: DosingOutcome) => this.#outcome(o);

  constructor(o: CitizenOptions) {
    this.#o = o;
    this.#rng = new Random(o.seed ^ 0xc171);
    this.#citizen = new Citizen({ clock: o.clock, sim: o.sim, notice: () => o.controller.status().notice, onAct: (a) => o.say(SAY[a] ?? a) });
    o.controller.on('status', this.#onStatus);
    o.controller.on('outcome', this.#onOutcome);
  }

  stop(): void {
    this.#enabled = false;
    this.#citizen.stop();
    this.#o.controller.off('status', this.#onStatus);
    this.#o.controller.off('outcome', this.#onOutcome);
  }

  /** Presses the robot's button now (the `press` command). */
  press(): void {
    this.#o.say(SAY.press!);
    this.#o.sim.pressButton();
  }

  /** Takes the cup now and puts it back a little later (the `take` command). */
  take(): void {
    if (!this.#o.sim.cupPresent) {
      this.#o.say('the cup is not in the robot');
      return;
    }
    this.#o.say(SAY.lift!);
    this.#o.sim.takeCup('citizen');
    this.#after(this.#rng.between(1, 3) * MIN, () => {
      this.#o.say(SAY.place!);
      this.#o.sim.placeCup();
    });
  }

  #after(ms: number, fn: () => void): void {
    this.#o.clock.setTimeout(() => {
      if (this.#enabled) fn();
    }, ms);
  }

  #status(s: ControllerStatus): void {
    const dose = s.current;
    if (!dose || s.phase !== 'due' || this.#seenDue.has(dose.doseId)) return;
    this.#seenDue.add(dose.doseId);
    const forget = this.#rng.chance(this.#o.forgetRate);
    if (forget) this.#o.say(`(the citizen will forget dose ${dose.doseId})`);
    const now = this.#o.clock.now();
    this.#citizen.expect(dose.windows, {
      forget,
      pressAtMs: [now + Math.round(this.#rng.between(0, 10) * MIN)],
      liftDelayMs: this.#rng.between(5, 30) * 1000,
      placeBackMs: this.#rng.between(1, 3) * MIN,
    });
  }

  #outcome(o: DosingOutcome): void {
    this.#citizen.end();
    // A yellow dose may have left pills in the cup: the care staff empty it (the robot shows the error until then), as
    // in the soak, so pills the robot said not to take never count as the citizen's.
    if (o.final === 'failed' && o.cls === 'yellow') {
      this.#after(this.#rng.between(1, 5) * MIN, () => {
        if (!staffTakeCup(this.#o.sim)) return;
        this.#o.say('care staff empty the cup');
        this.#after(this.#rng.between(1, 3) * MIN, () => this.#o.sim.placeCup());
      });
    }
  }
}

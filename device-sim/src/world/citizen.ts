// The simulated citizen: one for the soak, the scenario tests and the demo. Acts on a plan and on what the robot shows.
//
// Each dose comes with the citizen's intent (`CitizenPlan`): whether they mean
// to press at all, when they press (some presses fall before the early window
// on purpose), how long they take to lift the cup once the light says so, and
// whether they carry the empty cup away for a while. Between presses the
// citizen looks only at the robot itself, as a person in the room would: the
// light (the simulator's signal mode) and the screen's notice. They lift the
// cup only while the light says "take the cup", empty it when the screen says
// it is not empty, and press again only when the screen says why nothing
// happened (no cup, the cup not empty, no contact with the dispenser). A robot that silently ignores a press is not rescued by a
// second one. Everything runs on the clock given.

import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { DeviceSimulator } from '../simulator.js';
import type { DoseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';

export type CitizenPlan = {
  /** Never presses for this dose. */
  forget: boolean;
  /** When the citizen presses, in order; presses before the early window are on purpose. */
  pressAtMs: number[];
  /** From the light saying "take the cup" to the cup lifted. */
  liftDelayMs: number;
  /** From the cup lifted to the empty cup put back. */
  placeBackMs: number;
  /** The empty cup carried away before the dose and put back later. */
  cupAway?: { atMs: number; backAtMs: number } | undefined;
  /**
   * Once the cup is back, they lift it again this long later while the light still says "take the cup" (a light left
   * on by a host that went down, say), until the dose ends. Absent: one lift per dose.
   */
  liftAgainAfterMs?: number | undefined;
};

/** The citizen looks at the robot this often while a dose is under way. */
export const LOOK_EVERY_MS = 2000;
/** A press that the screen says did not work is repeated after this long. */
export const PRESS_AGAIN_MS = 20_000;
/** Notices after which the citizen presses again (once the cause is dealt with). */
const PRESS_AGAIN_ON: ReadonlySet<string> = new Set(['cup_missing', 'cup_not_empty', 'link_lost']);

export type CitizenOptions = {
  clock: Clock;
  sim: DeviceSimulator;
  /** The screen's notice now (null when the screen asks nothing special). */
  notice: () => string | null;
  /** No press this close to the window's close: it might reach the robot after it. */
  pressMarginMs?: number;
  /** How often the citizen looks at the robot while a dose is under way. */
  lookEveryMs?: number;
  /** A press the screen says did not work is repeated after this long. */
  pressAgainMs?: number;
  /** Told of each thing the citizen does (the demo prints it). */
  onAct?: (act: 'press' | 'lift' | 'place' | 'carry_away' | 'empty') => void;
};

export class Citizen {
  /** Cup lifts as the citizen (taking a dose) since construction. */
  lifts = 0;
  presses = 0;
  readonly #o: CitizenOptions;
  readonly #timers = new Set<TimerHandle>();
  readonly #placing = new Set<TimerHandle>();
  #plan: CitizenPlan | undefined;
  #windows: DoseWindows | undefined;
  #presentSinceMs: number | undefined;
  #lastPressMs = -Infinity;
  #lifted = false;

  readonly #lookEveryMs: number;
  readonly #pressAgainMs: number;

  constructor(o: CitizenOptions) {
    this.#o = o;
    this.#lookEveryMs = o.lookEveryMs ?? LOOK_EVERY_MS;
    this.#pressAgainMs = o.pressAgainMs ?? PRESS_AGAIN_MS;
  }

  /** The citizen's intent for the dose now open (or about to open). */
  expect(windows: DoseWindows, plan: CitizenPlan): void {
    this.end();
    this.#plan = plan;
    this.#windows = windows;
    this.#presentSinceMs = undefined;
    this.#lastPressMs = -Infinity;
    this.#lifted = false;
    const { clock, sim } = this.#o;
    if (plan.cupAway) {
      const away = plan.cupAway;
      this.#at(away.atMs, () => {
        if (sim.cupPresent && sim.status().pillsInCup === 0) {
          sim.takeCup('citizen');
          this.#o.onAct?.('carry_away');
        }
        this.#placeAt(away.backAtMs);
      });
    }
    if (plan.forget) return;
    for (const t of plan.pressAtMs) this.#at(t, () => this.#press());
    this.#at(plan.pressAtMs[0] ?? clock.now(), () => this.#look());
  }

  /** The dose is over: the citizen stops acting on it (a cup in their hand is still put back). */
  end(): void {
    for (const t of this.#timers) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
    this.#plan = undefined;
  }

  #at(atMs: number, fn: () => void): void {
    const h = this.#o.clock.setTimeout(() => {
      this.#timers.delete(h);
      fn();
    }, atMs - this.#o.clock.now());
    this.#timers.add(h);
  }

  #press(): void {
    const w = this.#windows!;
    if (this.#o.clock.now() > w.closeAtMs - (this.#o.pressMarginMs ?? 60_000) && this.#o.clock.now() >= w.earlyAtMs) return;
    this.presses++;
    this.#lastPressMs = this.#o.clock.now();
    this.#o.onAct?.('press');
    this.#o.sim.pressButton();
  }

  /**
   * Lifts the cup now, whatever the light says (a citizen who does not wait for it), and puts it back as usual;
   * `done`: they keep what was in it and lift it no more for this dose.
   */
  liftNow(done: boolean): void {
    const { clock, sim } = this.#o;
    if (!sim.cupPresent) return;
    sim.takeCup('citizen');
    this.lifts++;
    this.#o.onAct?.('lift');
    if (done) this.#lifted = true;
    this.#placeAt(clock.now() + (this.#plan?.placeBackMs ?? 5000));
  }

  /** Puts the cup back at `atMs`, whatever happens to the dose meanwhile; `stop` clears it. */
  #placeAt(atMs: number): void {
    const h = this.#o.clock.setTimeout(() => {
      this.#placing.delete(h);
      if (this.#o.sim.cupPresent) return;
      this.#o.sim.placeCup();
      this.#o.onAct?.('place');
    }, atMs - this.#o.clock.now());
    this.#placing.add(h);
  }

  /** Stops everything, cups in hand included (the world is shutting down). */
  stop(): void {
    this.end();
    for (const t of this.#placing) this.#o.clock.clearTimeout(t);
    this.#placing.clear();
  }

  #look(): void {
    const plan = this.#plan;
    if (!plan || (this.#lifted && plan.liftAgainAfterMs === undefined)) return;
    const { clock, sim } = this.#o;
    const now = clock.now();
    const signal = sim.status().signal;
    if (signal === 'present' && sim.cupPresent) {
      this.#presentSinceMs ??= now;
      if (now - this.#presentSinceMs >= plan.liftDelayMs) {
        sim.takeCup('citizen');
        this.lifts++;
        this.#lifted = true;
        this.#o.onAct?.('lift');
        this.#placeAt(now + plan.placeBackMs);
        if (plan.liftAgainAfterMs !== undefined) this.#at(now + plan.placeBackMs + plan.liftAgainAfterMs, () => this.#look());
        return;
      }
    } else this.#presentSinceMs = undefined;
    if (this.#lifted) {
      // Lifted once already: they only look whether the light still asks for the cup.
      this.#at(now + this.#lookEveryMs, () => this.#look());
      return;
    }
    const notice = this.#o.notice();
    const w = this.#windows!;
    // "Empty the cup first": the citizen lifts the cup, empties it, puts it back, and presses again later.
    if (notice === 'cup_not_empty' && sim.cupPresent && now - this.#lastPressMs >= this.#pressAgainMs / 2) {
      sim.takeCup('citizen');
      this.#o.onAct?.('empty');
      this.#placeAt(now + plan.placeBackMs);
      this.#at(now + this.#lookEveryMs, () => this.#look());
      return;
    }
    if (notice && PRESS_AGAIN_ON.has(notice) && sim.cupPresent && sim.status().pillsInCup === 0 && now - this.#lastPressMs >= this.#pressAgainMs && now >= w.earlyAtMs) {
      this.#press();
    }
    // Waiting for the light: look again when the lift is due, or at the usual pace.
    const every = this.#lookEveryMs;
    const wait = this.#presentSinceMs !== undefined ? Math.max(every / 100, Math.min(every * 5, this.#presentSinceMs + plan.liftDelayMs - now)) : every;
    this.#at(now + wait, () => this.#look());
  }
}

// Rare world events aimed at the moments that matter (FoundationDB's buggify), so a soak of a thousand dosings runs every recovery path.
//
// Uniform draws in time almost never land in the second a release takes, the
// millisecond a CLEAR is in flight or the last seconds of a window. The aim
// watches the simulated MCU's inputs (the simulator's `watch`) and the dose
// under way, and draws each event at its own rate per opportunity:
//
// | event (profile: aim.<event>Rate) | opportunity                                | what happens                                                    |
// |----------------------------------|--------------------------------------------|-----------------------------------------------------------------|
// | hostDownInMotion                 | per ROTATE or RELEASE the MCU starts       | the host goes down at a random moment while the motion runs     |
// | hostDownInShake                  | per SHAKE the MCU starts                   | the same, during a shake                                        |
// | hostDownInClear                  | per CLEAR the MCU receives                 | the host goes down before it hears the answer                  |
// | mcuResetInClear                  | per CLEAR the MCU receives                 | the MCU resets as the line arrives (it never runs)             |
// | mcuResetInRelease                | per RELEASE the MCU starts                 | the MCU resets before the cut (a brown-out as the cutter starts) |
// | retryFault                       | per retry motion: from a dose's SHAKE,     | the MCU resets while it runs (always once it reset in this      |
// |                                  | second ROTATE or second RELEASE on, each   | dose: a failing supply fails again), or else half the time the  |
// |                                  | new motion command of the dose             | motor driver trips as it is energised (driverFault)            |
// | hostDownAtClose                  | per dose still open 10 s before its close  | the host goes down then and boots again 1–60 s after the close |
// | hostDownAfterOutcome             | per RELEASED or SHAKEN the host stores     | the host goes down right after that commit, before the writes  |
// |                                  |                                            | of the same step (presented, failed, the next SHAKE's intent)  |
// | deafAtClose                      | per motion command in a window's last 10 s | the MCU goes deaf and mute for 5 s (notAnswering): from that   |
// |                                  |                                            | line on, or for a ROTATE half the time just after its ack (its |
// |                                  |                                            | outcome then reaches the host late)                            |
// | stickAtClose                     | per RELEASE in a window's last 10 s        | a pill sticks in the pouch until a shake (pillStuck)           |
// | cupLiftInMotion                  | per ROTATE or RELEASE the MCU starts       | the citizen lifts the cup while it runs and puts it back; during |
// |                                  |                                            | a release, half the time they keep what was in it and lift it  |
// |                                  |                                            | no more                                                        |
// | cupLiftInShake                   | per SHAKE the MCU starts                   | the same, during a shake                                       |
// | cupAwayAtClose                   | per dose the citizen presses for           | they press only 1.5–10 min before the close, having carried    |
// |                                  |                                            | the cup away; it is back 1–6 s before or 1–120 s after the     |
// |                                  |                                            | close (the held dose's retry then falls in the last seconds)   |
// | careAtClaim                      | per STATUS the MCU receives while the host | the care staff take that very dose out of dispensing (travel,  |
// |                                  | checks a press (the exchange before the    | a withdrawal by label, or a pause while it is not yet due)      |
// |                                  | dose is claimed: first press, held retry)  | through the robot's care actions, before the answer arrives    |
//
// "The host goes down" is a host crash or, in the profile's ratio of
// host.powerCutRate to host.crashRate, a power cut of host and MCU together.
// The aim has its own random stream: a profile without aimed events runs
// exactly as before. The staff's action at a claim draws from a stream of its
// own, so adding it left every other aimed event where it was until one fires.

import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { Command } from '../../../protocol/src/catalogue.js';
import type { DoseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';
import type { DeviceSimulator, SimAimed } from '../simulator.js';
import type { Random } from '../random.js';
import type { CitizenPlan } from './citizen.js';

export const AIM_EVENTS = ['hostDownInMotion', 'hostDownInShake', 'hostDownInClear', 'mcuResetInClear', 'mcuResetInRelease', 'retryFault',
  'hostDownAtClose', 'hostDownAfterOutcome', 'deafAtClose', 'stickAtClose', 'cupLiftInMotion', 'cupLiftInShake', 'cupAwayAtClose', 'careAtClaim'] as const;
export type AimEvent = (typeof AIM_EVENTS)[number];
export type AimRates = Partial<Record<`${AimEvent}Rate`, number>>;

/** How long before a window's close the last-seconds events look. */
const CLOSE_SPAN_MS = 10_000;

export type AimWorld = {
  clock: Clock;
  sim: DeviceSimulator;
  /** Whether the host process is running now. */
  hostUp(): boolean;
  /** The host goes down now (with the MCU on a power cut) and boots again at `backAtMs`, or after the usual delay. */
  hostDown(powerCut: boolean, backAtMs?: number): void;
  /** Of the host going down, the share that are power cuts. */
  powerCutShare: number;
  /** The citizen lifts the cup now and puts it back; `done`: they keep what was in it and lift it no more this dose. */
  liftCup(done: boolean): void;
  /** Counts an aimed event that happened (the report's world events). */
  count(event: string): void;
  /**
   * Whether the host is checking a press right now (the dose machine asked the MCU's STATUS before claiming the dose)
   * and the staff could act on that dose; only asked when careAtClaim has a rate.
   */
  checkingPress?(): boolean;
  /** The staff take the dose whose press is being checked out of dispensing, before the MCU's answer reaches the host. */
  careAtClaim?(): void;
};

export class Aim {
  readonly #timers = new Set<TimerHandle>();
  #windows: DoseWindows | undefined;
  /** Motion ids of the dose under way, by command: a new id after the first is a retry. */
  readonly #ids = { ROTATE: new Set<string>(), RELEASE: new Set<string>() };
  /** A retry has begun in this dose: every new motion from here on is one. */
  #retrying = false;
  /** The MCU's boot when the dose began: another one means it reset during the dose. */
  #boot = '';
  /** Motions the MCU is to reset during (decided as the command arrives, done once it runs); true: before the cut. */
  readonly #resetDuring = new Map<string, boolean>();

  constructor(private readonly rates: AimRates, private readonly rng: Random, private readonly w: AimWorld, private readonly staffRng: Random = rng) {
    w.sim.watch = { command: (c) => this.#command(c), motion: (m) => this.#motion(m) };
  }

  static active(rates: AimRates | undefined): boolean {
    return rates !== undefined && Object.values(rates).some((r) => (r ?? 0) > 0);
  }

  /** Host-down events are aimed: the world needs a store file that survives the host. */
  static downs(rates: AimRates | undefined): boolean {
    return rates !== undefined && ['hostDownInMotionRate', 'hostDownInShakeRate', 'hostDownInClearRate', 'hostDownAtCloseRate', 'hostDownAfterOutcomeRate']
      .some((k) => (rates[k as keyof AimRates] ?? 0) > 0);
  }

  #rate(e: AimEvent): number {
    return this.rates[`${e}Rate`] ?? 0;
  }

  #after(ms: number, fn: () => void): void {
    const h = this.w.clock.setTimeout(() => {
      this.#timers.delete(h);
      fn();
    }, Math.max(0, ms));
    this.#timers.add(h);
  }

  #down(event: AimEvent, backAtMs?: number): void {
    if (!this.w.hostUp()) return;
    this.w.count(event);
    this.w.hostDown(this.rng.chance(this.w.powerCutShare), backAtMs);
  }

  /**
   * The citizen's plan for a dose, changed when a press held by a missing cup until the close is drawn (cupAwayAtClose).
   */
  plan(plan: CitizenPlan, windows: DoseWindows): CitizenPlan {
    if (plan.forget || !this.rng.chance(this.#rate('cupAwayAtClose'))) return plan;
    const close = windows.closeAtMs;
    const pressAtMs = Math.round(close - this.rng.between(90_000, 600_000));
    const atMs = pressAtMs - this.rng.between(5_000, 60_000);
    const backAtMs = this.rng.chance(0.5) ? close - this.rng.between(1_000, 6_000) : close + this.rng.between(1_000, 120_000);
    this.w.count('cupAwayAtClose');
    return { ...plan, pressAtMs: [pressAtMs], cupAway: { atMs, backAtMs } };
  }

  /**
   * The host has just committed a motion's outcome (`result`, the stored JSON): true when it goes down at this very
   * point, between this commit and the next one of the same step (the caller stops the step).
   */
  downAfterCommit(result: string): boolean {
    if (!this.#windows || !this.w.hostUp()) return false;
    const type = (JSON.parse(result) as { type?: unknown }).type;
    if (type !== 'RELEASED' && type !== 'SHAKEN') return false;
    if (!this.rng.chance(this.#rate('hostDownAfterOutcome'))) return false;
    this.#down('hostDownAfterOutcome');
    return true;
  }

  /** A dose's window is the world's now (its events are drawn against it); the one before is over. */
  begin(windows: DoseWindows): void {
    this.end();
    this.#windows = windows;
    this.#boot = this.w.sim.bootId;
    if (this.rng.chance(this.#rate('hostDownAtClose'))) {
      const atMs = windows.closeAtMs - this.rng.between(0, CLOSE_SPAN_MS);
      const backAtMs = windows.closeAtMs + this.rng.between(1_000, 60_000);
      // Only a dose still open then (forgotten, held, or waiting in the cup) is there to be hit.
      this.#after(atMs - this.w.clock.now(), () => {
        if (this.#windows === windows) this.#down('hostDownAtClose', backAtMs);
      });
    }
  }

  /** The dose is over: its pending events are dropped. */
  end(): void {
    for (const h of this.#timers) this.w.clock.clearTimeout(h);
    this.#timers.clear();
    this.#windows = undefined;
    this.#ids.ROTATE.clear();
    this.#ids.RELEASE.clear();
    this.#retrying = false;
    this.#resetDuring.clear();
  }

  #command(cmd: Command): SimAimed {
    if (!this.#windows) return undefined;
    if (cmd.name === 'STATUS') {
      const rate = this.#rate('careAtClaim');
      if (rate > 0 && this.w.careAtClaim && this.w.checkingPress?.() && this.staffRng.chance(rate)) this.w.careAtClaim();
      return undefined;
    }
    if (cmd.name === 'CLEAR') {
      if (this.rng.chance(this.#rate('mcuResetInClear'))) {
        this.w.count('mcuResetInClear');
        return 'reset';
      }
      if (this.rng.chance(this.#rate('hostDownInClear'))) this.#after(0, () => this.#down('hostDownInClear'));
      return undefined;
    }
    if (cmd.name !== 'ROTATE' && cmd.name !== 'RELEASE' && cmd.name !== 'SHAKE') return undefined;
    const now = this.w.clock.now();
    if (now >= this.#windows.closeAtMs - CLOSE_SPAN_MS && now < this.#windows.closeAtMs && this.rng.chance(this.#rate('deafAtClose'))) {
      this.w.count('deafAtClose');
      return cmd.name === 'ROTATE' && this.rng.chance(0.5) ? 'deafAfter' : 'deaf';
    }
    if (cmd.name === 'SHAKE') this.#retrying = true;
    else {
      const ids = this.#ids[cmd.name];
      // The same id again (re-sent after the MCU said it never got it): the same motion, not a new chance.
      if (ids.has(cmd.id)) return undefined;
      if (ids.size > 0) this.#retrying = true;
      ids.add(cmd.id);
    }
    if (this.#retrying && this.rng.chance(this.#rate('retryFault'))) {
      this.w.count('retryFault');
      if (this.w.sim.bootId === this.#boot && this.rng.chance(0.5)) return 'trip';
      this.#resetDuring.set(cmd.id, false);
      return undefined;
    }
    if (cmd.name === 'RELEASE' && this.rng.chance(this.#rate('mcuResetInRelease'))) {
      this.w.count('mcuResetInRelease');
      this.#resetDuring.set(cmd.id, true);
    }
    if (cmd.name === 'RELEASE' && now >= this.#windows.closeAtMs - CLOSE_SPAN_MS && this.rng.chance(this.#rate('stickAtClose'))) {
      this.w.count('stickAtClose');
      return 'stick';
    }
    return undefined;
  }

  #motion(m: { name: 'ROTATE' | 'RELEASE' | 'SHAKE'; id: string; durationMs: number; cutAtMs?: number | undefined }): void {
    if (!this.#windows) return;
    const during = () => this.rng.between(0, m.durationMs);
    const beforeCut = this.#resetDuring.get(m.id);
    if (beforeCut !== undefined) {
      this.#resetDuring.delete(m.id);
      this.#after(beforeCut ? this.rng.between(0, m.cutAtMs ?? m.durationMs) : during(), () => this.w.sim.powerCycle());
    }
    if (this.rng.chance(this.#rate(m.name === 'SHAKE' ? 'hostDownInShake' : 'hostDownInMotion'))) {
      this.#after(during(), () => this.#down(m.name === 'SHAKE' ? 'hostDownInShake' : 'hostDownInMotion'));
    }
    const lift = m.name === 'SHAKE' ? 'cupLiftInShake' : 'cupLiftInMotion';
    if (this.rng.chance(this.#rate(lift))) {
      // The cup is empty while the carousel turns: nothing to keep.
      const done = m.name !== 'ROTATE' && this.rng.chance(0.5);
      this.#after(during(), () => {
        if (!this.w.sim.cupPresent) return;
        this.w.count(lift);
        this.w.liftCup(done);
      });
    }
  }
}

// The robot's controller: runs one dose machine at a time over the link and the store, and reconciles after a restart.
//
// The controller owns the order of things. Nothing moves before the link is
// ready and the store has been reconciled with the MCU: a dose left mid-motion
// by a power cut resumes in a state that asks the MCU about its command id
// first (see dose-machine.ts). Doses run one after another by intake time; a
// dose closes when the next one's early window opens, so at most one is open.

import { EventEmitter } from 'node:events';
import { createActor, fromCallback, type Actor, type AnyEventObject, type InspectionEvent, type NonReducibleUnknown, type StateValue } from 'xstate';
import type { Logger } from 'pino';
import type { Clock, IdleTicks, TimerHandle } from '../../protocol/src/clock.js';
import type { DeviceEvent } from '../../protocol/src/catalogue.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import type { DeviceLink, LinkState } from './link/link.js';
import { QUERY_RETRY_MS, createMotionExchange } from './link/motion-exchange.js';
import { createLifecycle, type Lifecycle } from './controller-lifecycle.js';
import { DEFAULT_TIMING, type DoseTiming, type ScheduledPouch } from './roll/types.js';
import type { DoseClass, DoseRow, FinalState, OpenHead, Store } from './store/store.js';
import type { Reading } from './dosing/judge.js';
import {
  createDoseMachine, doseWindows, type DoseDeps, type DoseMachine, type DoseResume, type DoseSpec, type DoseWindows, type MotionInput, type MotionOutcome, type Notice,
} from './dosing/dose-machine.js';

export type DosingOutcome = {
  doseId: string;
  slot: number;
  label: string;
  expectedPills: number;
  countedPills: number | null;
  /** Null for a dose that was never dispensed (missed before the button). */
  cls: DoseClass | null;
  final: FinalState;
  reason: string | null;
  attempts: number;
  commandIds: string[];
  finalAtMs: number;
};

export type ControllerPhase = 'starting' | 'idle' | 'waiting' | 'early' | 'due' | 'overdue' | 'dispensing' | 'presented';
export type DispensingStep = 'checking' | 'rotating' | 'releasing' | 'counting' | 'retrying';

export type ControllerStatus = {
  phase: ControllerPhase;
  step: DispensingStep | null;
  /** The dose the robot runs now, with its windows as its dose machine keeps them (the one definition). */
  current: { doseId: string; intakeAtMs: number; pillCount: number; windows: DoseWindows } | null;
  next: { doseId: string; intakeAtMs: number } | null;
  notice: Notice | null;
  lastOutcome: DosingOutcome | null;
  link: LinkState;
  reconciled: boolean;
};

export type ControllerOptions = {
  clock: Clock;
  link: DeviceLink;
  store: Store;
  profile: HardwareProfile;
  logger: Logger;
  timing?: Partial<DoseTiming>;
  /** QA only: replaces the verdict rules (see DoseDeps.judge). */
  judge?: DoseDeps['judge'];
  /** Sees every step of every dose machine (the soak counts which transitions ran). */
  inspect?: (e: InspectionEvent) => void;
};

/** How often the controller looks for commits by another process (`dosis roll load/unload` on the same file). */
export const DB_WATCH_MS = 3000;

type SignalMode = 'off' | 'remind' | 'present' | 'error';
/** A failure's error light shows at least this long before a reminder or `off` replaces it (see #errorAckedAtMs). */
export const ERROR_SHOWN_MS = 60_000;
/** The store's meta key for the light's mode (see #signalMode). */
const SIGNAL_META = 'signal_mode';

/** `failure`: the dose machine threw; dispensing has stopped and only a restart (which reconciles) resumes it. */
type Events = { outcome: [DosingOutcome]; status: [ControllerStatus]; failure: [Error] };

export class Controller {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #emitter = new EventEmitter();
  readonly #machine: DoseMachine;
  #actor: Actor<DoseMachine> | undefined;
  #actorDoseId: string | undefined;
  /** Started, reconciled, running: the lifecycle statechart (controller-lifecycle.ts). */
  readonly #lifecycle: Actor<Lifecycle>;
  #lastOutcome: DosingOutcome | null = null;
  #scheduleTimer: TimerHandle | undefined;
  #lastStatusKey = '';
  /**
   * What the robot's light and sound should show; sent again when a SIGNAL was lost or the MCU restarted. Kept in the
   * store too: a host that restarts shows again what it showed (a failed dose's error light stays until the next dose
   * asks for the citizen), not the MCU's power-up `off`.
   */
  #signalMode: SignalMode = 'off';
  #signalTimer: TimerHandle | undefined;
  /**
   * When the MCU acknowledged the error light now shown (undefined: asked for and not yet acknowledged). Until it has
   * shown for ERROR_SHOWN_MS, `off` and `remind` wait (in #deferredMode): a failure the citizen never saw is red, and
   * the next dose's reminder (or a link down as the dose failed) must not take its place unseen.
   */
  #errorAckedAtMs: number | undefined;
  #deferredMode: SignalMode | undefined;
  #holdTimer: TimerHandle | undefined;
  #watchTimer: TimerHandle | undefined;
  #watchAtMs = 0;
  #dataVersion: number | undefined;
  /** The store rows the running actor was built from; a commit by another process that changes them restarts it. */
  #scheduleKey = '';
  /**
   * The first open doses as the status shows them, read with the schedule and read again when it may have changed
   * otherwise: a roll loaded or unloaded here, or a commit by another process. The running dose's own steps (claimed,
   * presented, ended) change neither which other doses come first nor their times.
   */
  #heads: OpenHead[] | undefined;
  readonly #onEvent = (e: DeviceEvent) => this.#deviceEvent(e);
  readonly #onReady = () => this.#lifecycle.send({ type: 'LINK_READY' });
  readonly #onState = () => this.#emitStatus();

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    const shown = opts.store.getMeta(SIGNAL_META);
    if (shown === 'remind' || shown === 'present' || shown === 'error') this.#signalMode = shown;
    const deps: DoseDeps = {
      clock: opts.clock,
      profile: opts.profile,
      store: opts.store,
      bootId: () => opts.link.hello?.boot ?? null,
      signal: (mode) => this.#signal(mode),
      motion: this.#motionLogic(),
      status: this.#statusLogic(),
      clear: this.#clearLogic(),
      judge: opts.judge,
    };
    this.#machine = createDoseMachine(deps);
    this.#lifecycle = createActor(createLifecycle({
      status: this.#mcuStatusLogic(),
      noteBoot: () => this.#noteBoot(),
      sendSignal: () => this.#sendSignal(),
      reconciled: (e) => {
        this.#o.store.observeLifts(e.lifts, this.#uncertainDose());
        this.#log.info({ boot: e.boot, cup: e.cup, lifts: e.lifts }, 'reconciled with the MCU');
        // From a fresh turn of the clock, once the lifecycle is in `running`.
        this.#o.clock.clearTimeout(this.#scheduleTimer);
        this.#scheduleTimer = this.#o.clock.setTimeout(() => this.#schedule(), 0);
      },
      rechecked: (e) => {
        if (this.#o.store.observeLifts(e.lifts, this.#uncertainDose())) this.#actor?.send({ type: 'CUP', present: false });
      },
      reconcileFailed: () => this.#log.warn('STATUS failed while reconciling; trying again at the next ready'),
    }), { clock: opts.clock });
    this.#lifecycle.start();
  }

  get #started(): boolean {
    return !this.#lifecycle.getSnapshot().matches('stopped');
  }

  get #reconciled(): boolean {
    const snap = this.#lifecycle.getSnapshot();
    return snap.matches('running') || snap.matches('rechecking');
  }

  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Starts listening to the link; the first dose starts once the link is ready and the store reconciled. */
  start(): void {
    if (this.#started) return;
    const link = this.#o.link;
    link.on('event', this.#onEvent);
    link.on('ready', this.#onReady);
    link.on('state', this.#onState);
    // A private in-memory store (soaks without crashes, fast tests) has no other process to watch for.
    if (this.#o.store.durable) {
      this.#dataVersion = this.#o.store.dataVersion();
      this.#armWatch();
    }
    this.#lifecycle.send({ type: 'START', linkReady: link.state === 'ready' });
  }

  stop(): void {
    this.#lifecycle.send({ type: 'STOP' });
    const link = this.#o.link;
    link.off('event', this.#onEvent);
    link.off('ready', this.#onReady);
    link.off('state', this.#onState);
    this.#o.clock.clearTimeout(this.#scheduleTimer);
    this.#o.clock.clearTimeout(this.#signalTimer);
    this.#o.clock.clearTimeout(this.#holdTimer);
    this.#o.clock.clearTimeout(this.#watchTimer);
    this.#actor?.stop();
    this.#actor = undefined;
    this.#actorDoseId = undefined;
  }

  get store(): Store {
    return this.#o.store;
  }

  /** Makes a roll the schedule (the store unloads the one before in the same transaction). */
  loadSchedule(roll: { rollId: string; citizenId: string; pouches: readonly ScheduledPouch[] }, staffId: string | null = null): DoseRow[] {
    const returned = this.#o.store.loadRoll(roll, staffId);
    this.#heads = undefined;
    this.#restartIfWaiting();
    return returned;
  }

  /** The schedule changed in the store from this process (a pause, a travel pack, a withdrawal): start over from it. */
  scheduleChanged(): void {
    this.#heads = undefined;
    this.#restartIfWaiting();
  }

  unloadSchedule(staffId: string | null = null): DoseRow[] {
    const returned = this.#o.store.unloadRoll(staffId);
    this.#heads = undefined;
    this.#restartIfWaiting();
    return returned;
  }

  /** The on-screen button; the MCU's BUTTON event does the same. */
  pressButton(): void {
    this.#log.info({ doseId: this.#actorDoseId ?? null }, 'button');
    this.#actor?.send({ type: 'PRESS' });
  }

  status(): ControllerStatus {
    return this.#statusOf(this.#statusParts());
  }

  /** What the status is made of, before it is built: enough for its change key (see #emitStatus). */
  #statusParts(): StatusParts {
    const snap = this.#actor?.getSnapshot();
    // The running dose is the first open one; a third row covers a roll loaded while one is presented.
    const open = (this.#heads ??= this.#o.store.openHeads(3));
    const current = this.#actorDoseId ? open.find((d) => d.doseId === this.#actorDoseId) : undefined;
    const next = open.find((d) => d.doseId !== this.#actorDoseId && d.state === 'scheduled');
    const reconciled = this.#reconciled;
    const [phase, step] = snap && snap.status === 'active' ? phaseOf(snap.value) : [reconciled ? 'idle' as const : 'starting' as const, null];
    return { phase, step, current, windows: snap?.context.dose.windows, next, notice: snap?.context.notice ?? null, reconciled };
  }

  #statusOf(p: StatusParts): ControllerStatus {
    const { current, next } = p;
    return {
      phase: p.phase,
      step: p.step,
      current: current && p.windows ? { doseId: current.doseId, intakeAtMs: current.intakeAtMs, pillCount: current.pillCount, windows: p.windows } : null,
      next: next ? { doseId: next.doseId, intakeAtMs: next.intakeAtMs } : null,
      notice: p.notice,
      lastOutcome: this.#lastOutcome,
      link: this.#o.link.state,
      reconciled: p.reconciled,
    };
  }

  // ------------------------------------------------------------ link events

  #deviceEvent(e: DeviceEvent): void {
    if (e.name === 'BUTTON') this.pressButton();
    else if (e.name === 'CUP') {
      // Kept events (sent while no host listened) count like fresh ones: the lift counter tells news from a repeat.
      // A cup put back reports the count too, so a lift and a put-back inside the MCU's debounce (one event, the cup
      // present) is a lift all the same.
      if (this.#o.store.observeLifts(e.lifts, this.#uncertainDose())) this.#actor?.send({ type: 'CUP', present: false });
    } else if (e.name === 'LATCHED') {
      this.#o.store.log('mcu_latched', this.#actorDoseId ?? null, { reason: e.reason });
    } else if (e.name === 'BOOT') {
      this.#o.store.log('mcu_boot', null, { boot: e.boot, fw: e.fw });
    }
  }

  /** At every ready: the MCU's boot id against the stored one. */
  #noteBoot(): void {
    const hello = this.#o.link.hello;
    const previous = this.#o.store.getMeta('mcu_boot');
    if (hello && previous !== hello.boot) {
      this.#o.store.setMeta('mcu_boot', hello.boot);
      if (previous) this.#o.store.log('mcu_reset_seen', this.#actorDoseId ?? null, { previous, boot: hello.boot });
    }
  }

  /**
   * STATUS for the lifecycle: the cup as the MCU counted it. A lift the host did not see (it was down, or the MCU's
   * reset lost the CUP event) emptied the cup. Never decided from "cup present" alone: a cup taken and put back is
   * present again.
   */
  #mcuStatusLogic() {
    return fromCallback<AnyEventObject, NonReducibleUnknown>(({ sendBack }) => {
      const r = this.#reporter(sendBack);
      this.#o.link.send({ name: 'STATUS' }, (res) => {
        if (!res.ok || res.ack.result !== 'OK') return r.report({ type: 'STATUS_FAILED' });
        r.report({ type: 'STATUS', lifts: res.ack.fields.lifts, boot: res.ack.fields.boot, cup: res.ack.fields.cup });
      });
      r.started();
    });
  }

  /** The open dose whose pills may be falling or have just fallen (dispensing after a RELEASE): a lift then leaves it unknown. */
  #uncertainDose(): string | null {
    const open = this.#o.store.openDoses(1)[0];
    if (!open || open.state !== 'dispensing') return null;
    // A RELEASE or SHAKE the MCU refused moved nothing; one it ran, or whose end the host never heard, may have let pills fall.
    return this.#o.store.intents(open.doseId).some((i) => i.name !== 'ROTATE' && !(i.result && (JSON.parse(i.result) as MotionOutcome).type === 'REFUSED')) ? open.doseId : null;
  }

  // ------------------------------------------------------------ signal

  #signal(mode: SignalMode): void {
    if ((mode === 'off' || mode === 'remind') && this.#holdsError()) {
      this.#deferredMode = mode;
      return;
    }
    this.#deferredMode = undefined;
    if (mode === 'error' && this.#signalMode !== 'error') this.#errorAckedAtMs = undefined;
    if (mode !== this.#signalMode) this.#o.store.setMeta(SIGNAL_META, mode);
    this.#signalMode = mode;
    this.#o.clock.clearTimeout(this.#signalTimer);
    this.#sendSignal();
  }

  /** The error light is asked for and has not yet shown for ERROR_SHOWN_MS (see #errorAckedAtMs). */
  #holdsError(): boolean {
    return this.#signalMode === 'error' && (this.#errorAckedAtMs === undefined || this.#o.clock.now() < this.#errorAckedAtMs + ERROR_SHOWN_MS);
  }

  #sendSignal(): void {
    const mode = this.#signalMode;
    this.#o.link.send({ name: 'SIGNAL', mode }, (r) => {
      if (r.ok && r.ack.result === 'OK' && mode === 'error' && this.#signalMode === 'error' && this.#errorAckedAtMs === undefined && this.#started) {
        // Shown: what waited behind it follows once it has shown long enough to be seen.
        this.#errorAckedAtMs = this.#o.clock.now();
        this.#o.clock.clearTimeout(this.#holdTimer);
        this.#holdTimer = this.#o.clock.setTimeout(() => {
          const next = this.#deferredMode;
          if (this.#started && next !== undefined && !this.#holdsError()) this.#signal(next);
        }, ERROR_SHOWN_MS);
      }
      if ((r.ok && r.ack.result === 'OK') || !this.#started || this.#signalMode !== mode) return;
      // Link not ready: the next ready sends it. Unanswered on a ready link: try again shortly.
      if (this.#o.link.state !== 'ready') return;
      this.#o.clock.clearTimeout(this.#signalTimer);
      this.#signalTimer = this.#o.clock.setTimeout(() => {
        if (this.#started && this.#signalMode === mode) this.#sendSignal();
      }, QUERY_RETRY_MS);
    });
  }

  // ------------------------------------------------------------ schedule

  /** Looks for commits by another process on the injected clock; only while no dose is being dispensed or waits in the cup. */
  #armWatch(delayMs = DB_WATCH_MS): void {
    this.#watchAtMs = this.#o.clock.now() + delayMs;
    this.#watchTimer = this.#o.clock.setTimeout(this.#onWatchTimer, delayMs);
  }

  readonly #onWatchTimer = () => {
    if (!this.#started) return;
    this.#checkStore();
    this.#armWatch();
  };

  /**
   * When the store watch's next look comes before `beforeMs` and its looks would find nothing (no other process has
   * committed since the last look, so the looks only arm the next one): its timer, when it fires and its period; else
   * undefined. For a virtual-time driver that skips idle rounds (the soak's coalesced mode, device-sim/src/soak/coast.ts),
   * which knows that nothing else runs on this process's clock before the time it skips to.
   */
  idleWatch(beforeMs = Infinity): IdleTicks | undefined {
    if (!this.#watchTimer || !this.#started || this.#watchAtMs >= beforeMs) return undefined;
    // While a dose is dispensed or waits in the cup, a look reads nothing (see #checkStore); else it reads the version.
    if (!this.#busy() && this.#o.store.dataVersion() !== this.#dataVersion) return undefined;
    return { timer: this.#watchTimer, atMs: this.#watchAtMs, everyMs: DB_WATCH_MS };
  }

  /** Accounts `looks` store looks as done, as idleWatch() offered them (each found nothing): the next comes `looks` periods on. */
  coastWatch(looks: number): void {
    if (looks <= 0 || !this.#watchTimer || !this.#started) return;
    this.#o.clock.clearTimeout(this.#watchTimer);
    this.#armWatch(this.#watchAtMs + looks * DB_WATCH_MS - this.#o.clock.now());
  }

  /** A dose is being dispensed or waits in the cup: the schedule is not started over from the store meanwhile. */
  #busy(): boolean {
    const snap = this.#actor?.getSnapshot();
    return snap !== undefined && snap.status === 'active' && (snap.matches('dispensing') || snap.matches('presented'));
  }

  #checkStore(): void {
    if (this.#busy()) return;
    let version: number;
    try {
      version = this.#o.store.dataVersion();
    } catch (err) {
      this.#log.error({ err }, 'cannot read the store version');
      return;
    }
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    this.#heads = undefined;
    if (!this.#reconciled) return;
    if (this.#actor && this.#keyOf(this.#o.store.openDoses(2)) === this.#scheduleKey) return;
    this.#log.info({ doseId: this.#actorDoseId ?? null }, 'the schedule changed in the store (another process): starting over from it');
    this.#restartIfWaiting();
  }

  #keyOf(open: readonly DoseRow[]): string {
    return JSON.stringify(open.map((d) => [d.doseId, d.state, d.intakeAtMs, d.timing, d.overdue, d.slot, d.label, d.pillCount]));
  }

  #restartIfWaiting(): void {
    if (this.#busy()) return;
    const reminding = this.#signalMode === 'remind';
    this.#actor?.stop();
    this.#actor = undefined;
    this.#actorDoseId = undefined;
    this.#schedule();
    // A dose being reminded of may have left dispensing (released for travel, withdrawn): the reminder stops with it,
    // unless the dose the controller starts over with is due too.
    if (reminding && !this.#reminds()) this.#signal('off');
  }

  /** Whether the dose under way is due or overdue (its machine reminds of it). */
  #reminds(): boolean {
    const snap = this.#actor?.getSnapshot();
    return snap !== undefined && (snap.matches({ timing: 'due' }) || snap.matches({ timing: 'overdue' }));
  }

  #schedule(): void {
    if (!this.#started || !this.#reconciled || this.#actor) return;
    // The dose to run and the one after it: enough for the windows, the status (current and next) and the change key.
    const open = this.#o.store.openDoses(2);
    this.#heads = open.map((d) => ({ doseId: d.doseId, intakeAtMs: d.intakeAtMs, pillCount: d.pillCount, state: d.state }));
    this.#scheduleKey = this.#keyOf(open);
    const row = open[0];
    if (!row) {
      this.#emitStatus();
      return;
    }
    const next = open[1];
    const nextEarly = next ? next.intakeAtMs - next.timing.earlyMin * 60_000 : null;
    const timing = { ...DEFAULT_TIMING, ...this.#o.timing, ...row.timing };
    const spec: DoseSpec = {
      doseId: row.doseId, slot: row.slot, label: row.label, expectedPills: row.pillCount,
      windows: doseWindows(row.intakeAtMs, timing, nextEarly), reminderEveryMs: timing.reminderEveryMin * 60_000, overdue: row.overdue,
      cupUnknown: this.#o.store.cupUnknown(row.doseId),
    };
    const actor = createActor(this.#machine, { clock: this.#o.clock, input: { dose: spec, resume: this.#resumeOf(row) }, inspect: this.#o.inspect });
    this.#actor = actor;
    this.#actorDoseId = row.doseId;
    actor.subscribe({
      next: (snap) => {
        if (snap.status === 'done') this.#doseEnded(actor, row.doseId);
        else this.#emitStatus();
      },
      error: (err) => {
        this.#log.error({ err, doseId: row.doseId }, 'dose machine failed');
        this.#emitter.emit('failure', err instanceof Error ? err : new Error(String(err)));
      },
    });
    actor.start();
    // Presented before a restart and lifted since (the lift counter said so while no actor ran): taken.
    if (row.state === 'presented' && this.#o.store.cupDose() !== row.doseId) actor.send({ type: 'CUP', present: false });
  }

  #resumeOf(row: DoseRow): DoseResume {
    if (row.state === 'presented' && (row.cls === 'correct' || row.cls === 'green')) {
      return { state: 'presented', cls: row.cls, countedPills: row.countedPills ?? row.pillCount, attempts: row.attempts };
    }
    if (row.state !== 'dispensing') return this.#o.store.asked(row.doseId) ? { state: 'asked' } : { state: 'timing' };
    const intents = this.#o.store.intents(row.doseId);
    const readings: Reading[] = [];
    for (const i of intents) {
      if (!i.result || i.name === 'ROTATE') continue;
      const r = JSON.parse(i.result) as MotionOutcome;
      if (r.type === 'RELEASED' || r.type === 'SHAKEN') readings.push({ n: r.n, w: r.w, empty: r.empty });
    }
    const rotations = intents.filter((i) => i.name === 'ROTATE').length;
    const shakes = intents.filter((i) => i.name === 'SHAKE').length;
    const attempts = 1 + Math.max(0, rotations - 1) + shakes;
    const pending = this.#o.store.pendingIntent(row.doseId);
    if (pending) {
      this.#log.warn({ doseId: row.doseId, commandId: pending.commandId, name: pending.name }, 'resuming a motion whose outcome is unknown: asking the MCU');
      // The machine counts the motion again on entering its state.
      return {
        state: 'motion', name: pending.name, commandId: pending.commandId, readings,
        rotations: pending.name === 'ROTATE' ? rotations - 1 : rotations,
        shakes: pending.name === 'SHAKE' ? shakes - 1 : shakes,
        attempts: pending.name === 'SHAKE' ? attempts - 1 : attempts,
      };
    }
    return { state: 'dispensing-idle', readings, attempts };
  }

  #doseEnded(actor: Actor<DoseMachine>, doseId: string): void {
    if (this.#actor !== actor) return;
    this.#actor = undefined;
    this.#actorDoseId = undefined;
    // The ended dose leaves the open ones; the others stay as they were (the next #schedule reads them afresh).
    this.#heads = this.#heads?.filter((d) => d.doseId !== doseId);
    const row = this.#o.store.dose(doseId);
    if (row && (row.state === 'taken' || row.state === 'missed' || row.state === 'failed')) {
      const outcome: DosingOutcome = {
        doseId, slot: row.slot, label: row.label, expectedPills: row.pillCount, countedPills: row.countedPills, cls: row.cls,
        final: row.state, reason: row.reason, attempts: row.attempts,
        commandIds: this.#o.store.intents(doseId).map((i) => i.commandId), finalAtMs: row.finalAtMs ?? this.#o.clock.now(),
      };
      this.#lastOutcome = outcome;
      this.#log.info({ doseId, final: outcome.final, cls: outcome.cls, reason: outcome.reason, counted: outcome.countedPills, expected: outcome.expectedPills }, 'dose ended');
      this.#emitter.emit('outcome', outcome);
    }
    // The next dose starts from a fresh turn of the clock, not inside this actor's last transition.
    this.#o.clock.clearTimeout(this.#scheduleTimer);
    this.#scheduleTimer = this.#o.clock.setTimeout(() => this.#schedule(), 0);
    this.#emitStatus();
  }

  /** Tells the listeners when the status changed; it is built only then (most of a dose's steps change none of it). */
  #emitStatus(): void {
    if (this.#emitter.listenerCount('status') === 0) return;
    const p = this.#statusParts();
    const key = `${p.phase}|${p.step}|${p.current?.doseId}|${p.notice}|${this.#o.link.state}|${this.#lastOutcome?.doseId}|${p.next?.doseId}`;
    if (key === this.#lastStatusKey) return;
    this.#lastStatusKey = key;
    this.#emitter.emit('status', this.#statusOf(p));
  }

  // ------------------------------------------------------------ MCU actors

  /** Defers a report made while the actor is still starting (a link callback can run synchronously). */
  #reporter(sendBack: (e: AnyEventObject) => void): { report: (e: AnyEventObject) => void; started: () => void } {
    let started = false;
    let done = false;
    return {
      report: (e) => {
        if (done) return;
        done = true;
        if (started) sendBack(e);
        else this.#o.clock.setTimeout(() => sendBack(e), 0);
      },
      started: () => (started = true),
    };
  }

  #statusLogic() {
    return fromCallback<AnyEventObject, NonReducibleUnknown>(({ sendBack }) => {
      const r = this.#reporter(sendBack);
      this.#o.link.send({ name: 'STATUS' }, (res) => {
        if (!res.ok || res.ack.result !== 'OK') return r.report({ type: 'STATUS_FAILED' });
        // A lift whose CUP event never came (lost with an MCU reset) empties the cup all the same.
        this.#o.store.observeLifts(res.ack.fields.lifts);
        r.report({ type: 'STATUS', cup: res.ack.fields.cup === 1, latched: res.ack.fields.st === 'latched', cupHoldsDose: this.#o.store.cupDose() !== null });
      });
      r.started();
    });
  }

  #clearLogic() {
    return fromCallback<AnyEventObject, NonReducibleUnknown>(({ sendBack }) => {
      const r = this.#reporter(sendBack);
      this.#o.link.send({ name: 'CLEAR' }, (res) => r.report(res.ok && res.ack.result === 'OK' ? { type: 'CLEARED' } : { type: 'STATUS_FAILED' }));
      r.started();
    });
  }

  /**
   * A motion, as the motion exchange machine (link/motion-exchange.ts) runs it: the command, its ack and outcome, and
   * the QUERY after a loss. This wraps it for the dose machine: link events in, the machine's output out.
   */
  #motionLogic() {
    const o = this.#o;
    const exchange = createMotionExchange({ clock: o.clock, leaseMs: o.profile.leaseMs, send: this.#sendLogic(), query: this.#queryLogic() });
    return fromCallback<AnyEventObject, MotionInput>(({ input, sendBack }) => {
      const r = this.#reporter(sendBack);
      const link = o.link;
      const actor = createActor(exchange, { clock: o.clock, input });
      const onEvent = (e: DeviceEvent) => {
        if ((e.name === 'ROTATED' || e.name === 'RELEASED' || e.name === 'SHAKEN') && e.id === input.commandId) actor.send({ type: 'OUTCOME', outcome: toOutcome(e) });
      };
      const onReset = () => actor.send({ type: 'MCU_RESET' });
      const onReady = () => actor.send({ type: 'LINK_READY' });
      const cleanup = () => {
        link.off('event', onEvent);
        link.off('mcuReset', onReset);
        link.off('ready', onReady);
      };
      actor.subscribe({
        next: (snap) => {
          if (snap.status !== 'done') return;
          cleanup();
          r.report(snap.output as MotionOutcome);
        },
        error: (err) => o.logger.error({ err, commandId: input.commandId }, 'motion exchange failed'),
      });
      link.on('event', onEvent);
      link.on('mcuReset', onReset);
      link.on('ready', onReady);
      actor.start();
      r.started();
      return () => {
        cleanup();
        actor.stop();
      };
    });
  }

  /** One transmission of a motion command (the link retransmits it, with the deadline's time left, until acked). */
  #sendLogic() {
    const o = this.#o;
    return fromCallback<AnyEventObject, MotionInput>(({ input, sendBack }) => {
      const r = this.#reporter(sendBack);
      const dl = Math.max(0, Math.floor(input.deadlineAtMs - o.clock.now()));
      o.link.send({ name: input.name, id: input.commandId, slot: input.slot, lease: o.profile.leaseMs, dl }, (res) => {
        if (!res.ok) r.report({ type: 'SEND_FAILED', reset: res.error.code === 'DOSIS_ERR_MCU_RESET' });
        else if (res.ack.result === 'OK') r.report({ type: 'ACK_OK' });
        else r.report({ type: 'ACK_REFUSED', code: res.ack.result === 'BUSY' ? 'BUSY' : res.ack.result.slice(4) });
      }, { deadlineAtMs: input.deadlineAtMs });
      r.started();
    });
  }

  /** QUERY about a motion's id. */
  #queryLogic() {
    const o = this.#o;
    return fromCallback<AnyEventObject, MotionInput>(({ input, sendBack }) => {
      const r = this.#reporter(sendBack);
      o.link.send({ name: 'QUERY', id: input.commandId }, (res) => {
        if (!res.ok || res.ack.result !== 'OK') return r.report({ type: 'QUERY_FAILED', notReady: o.link.state !== 'ready' });
        const a = res.ack.fields;
        if (a.st === 'none') o.logger.warn({ commandId: input.commandId, name: input.name, resume: input.resume }, 'MCU does not know the command');
        r.report({ type: 'QUERY_ANSWER', st: a.st, outcome: a.st === 'done' ? fromQuery(a, input.slot) : undefined });
      });
      r.started();
    });
  }
}

type StatusParts = {
  phase: ControllerPhase;
  step: DispensingStep | null;
  current: OpenHead | undefined;
  /** The running dose's windows (its dose machine's). */
  windows: DoseWindows | undefined;
  next: OpenHead | undefined;
  notice: Notice | null;
  reconciled: boolean;
};

/**
 * The phase and step of a running dose machine's state (dose-machine.ts): `{ dispensing: <step> }` or `held` while
 * dispensing, `presented`, `{ timing: <phase> }` while it waits for its time.
 */
function phaseOf(value: StateValue): [ControllerPhase, DispensingStep | null] {
  if (typeof value === 'string') return value === 'held' ? ['dispensing', 'checking'] : value === 'presented' ? ['presented', null] : ['waiting', null];
  const dispensing = value.dispensing;
  if (dispensing !== undefined) {
    const s = typeof dispensing === 'string' ? dispensing : Object.keys(dispensing)[0];
    return ['dispensing', s === 'releasing' ? 'releasing' : s === 'shaking' ? 'retrying' : s === 'judging' ? 'counting' : s === 'rotating' ? 'rotating' : 'checking'];
  }
  const timing = value.timing;
  const t = typeof timing === 'string' ? timing : undefined;
  return [t === 'early' ? 'early' : t === 'due' ? 'due' : t === 'overdue' ? 'overdue' : 'waiting', null];
}

function toOutcome(e: Extract<DeviceEvent, { name: 'ROTATED' | 'RELEASED' | 'SHAKEN' }>): MotionOutcome {
  if (e.name === 'ROTATED') return { type: 'ROTATED', slot: e.slot, label: e.label, err: e.err };
  return { type: e.name, n: e.n, w: e.w, empty: e.empty === 1 };
}

function fromQuery(a: { ev?: 'ROTATED' | 'RELEASED' | 'SHAKEN' | undefined; slot?: number | undefined; n?: number | undefined; w?: number[] | undefined; empty?: number | undefined; label?: string | undefined; err?: 'JAM' | 'LABEL' | undefined }, slot: number): MotionOutcome {
  if (a.ev === 'ROTATED') return { type: 'ROTATED', slot: a.slot ?? slot, label: a.label, err: a.err };
  if (a.ev === 'RELEASED' || a.ev === 'SHAKEN') return { type: a.ev, n: a.n ?? 0, w: a.w ?? [], empty: a.empty === 1 };
  return { type: 'LOST', reason: 'unknown' };
}

// The dose machine (XState v5): one actor per dose, from its schedule window through dispensing to its one final state.
//
// timing       waiting → early → due (reminders) → overdue (alarm) → missed (closed: the citizen never asked)
// dispensing   (the press is stored) checkingCup → starting (claims the dose in the store) → rotating → (label matches)
//              → releasing → judging → shaking → judging …  → presenting ; every failure → failed (yellow); a cup lifted
//              while pills may be falling → failed (the pills may be on the tray: never presented as if in the cup)
// held         the citizen asked but the dose cannot go on yet (no cup, a full cup, link lost, a rotation lost to a
//              reset): the claim is given back (nothing left the pouch; the pharmacy may unload), and the dose tries
//              again by itself and on the button until the window closes, then failed (yellow), never missed
// presented    the right pills wait in the cup → taken; at close (or the grace after a presentation just before it)
//              missed (left in the cup: the error light says not to take them now), or failed when a cup lift the
//              host could not see may have taken them
// withdrawn    the store would not let the dose start (returned by another process): no motion, nothing written
//
// Everything the machine does to the world goes through `deps`: the store
// (write-ahead intents, outcomes, outbox), the signal, and three actor logics
// that talk to the MCU (`motion`, `status`, `clear`). Guards read only context,
// events and the injected clock, so the machine's graph can be walked without
// hardware. All timing
// is named delays computed from the injected clock; the actor runs on that clock
// (`createActor(machine, { clock })`).

import { assign, enqueueActions, fromCallback, setup, type ActorLogic, type AnyEventObject, type CallbackSnapshot, type NonReducibleUnknown } from 'xstate';
import type { Clock } from '../../../protocol/src/clock.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import type { DoseTiming } from '../roll/types.js';
import type { DoseClass, IntentName } from '../store/store.js';
import { judge, type Reading, type Verdict } from './judge.js';

const MIN = 60_000;

/** A rotation that fails (jam, unreadable or wrong label, refused) is tried this many times in all. */
export const MAX_ROTATIONS = 2;
/** A dose held after the citizen's press (see `held`) is tried again this often. */
export const HELD_RETRY_MS = 5000;
/**
 * A dose presented just before its window closes stays the citizen's for at least this long after it was presented
 * (the walk to the robot); taken after the close, it ends taken with reason `taken_after_close`.
 */
export const PRESENTED_GRACE_MS = 2 * MIN;

export type DoseWindows = { earlyAtMs: number; dueAtMs: number; overdueAtMs: number; closeAtMs: number };

export type DoseSpec = {
  doseId: string;
  slot: number;
  label: string;
  expectedPills: number;
  windows: DoseWindows;
  reminderEveryMs: number;
  /** The alarm centre was told the dose is overdue before (a restart): do not tell it again. */
  overdue: boolean;
  /**
   * The cup was lifted while the host could not tell whether this dose's pills were in it yet (a restart mid-release,
   * a lift during the dispensing): not taken for sure, so never missed either; at close it fails as `cup_unknown`.
   */
  cupUnknown?: boolean;
};

/** Where a restarted host picks the dose up (from the store). */
export type DoseResume =
  | { state: 'timing' }
  | { state: 'presented'; cls: 'correct' | 'green'; countedPills: number; attempts: number }
  /** A motion whose outcome the host never learnt: the machine asks the MCU about `commandId` before anything else. */
  | { state: 'motion'; name: IntentName; commandId: string; readings: Reading[]; attempts: number; rotations: number; shakes: number }
  /** Dispensing had started but no motion was pending: nothing left the pouch since the last known outcome. */
  | { state: 'dispensing-idle'; readings: Reading[]; attempts: number }
  /** The citizen asked before the restart and the dose was held (see `held`): it goes on trying. */
  | { state: 'asked' };

export type DoseInput = { dose: DoseSpec; resume: DoseResume };

/** What the MCU actors report back to the machine. */
export type MotionOutcome =
  | { type: 'ROTATED'; slot: number; label?: string | undefined; err?: 'JAM' | 'LABEL' | undefined }
  | { type: 'RELEASED'; n: number; w: number[]; empty: boolean }
  | { type: 'SHAKEN'; n: number; w: number[]; empty: boolean }
  /** The MCU refused the command (ack ERR:<code> or BUSY). */
  | { type: 'REFUSED'; code: string }
  /** The outcome cannot be known: the MCU reset or forgot the command id. */
  | { type: 'LOST'; reason: 'mcu_reset' | 'unknown' };

export type DoseEvent =
  | { type: 'PRESS' }
  | { type: 'CUP'; present: boolean }
  | { type: 'STATUS'; cup: boolean; cupHoldsDose: boolean; latched: boolean }
  | { type: 'STATUS_FAILED' }
  | { type: 'CLEARED' }
  | MotionOutcome;

/** `deadlineAtMs`: the dose's close; no transmission and no pill leaves the pouch after it. */
export type MotionInput = { name: IntentName; commandId: string; slot: number; resume: boolean; deadlineAtMs: number };

export type Notice = 'cup_missing' | 'cup_not_empty' | 'link_lost' | 'too_early';

export type MotionDeadline = { deadlineAtMs: number };

export type DoseContext = {
  dose: DoseSpec;
  resume: DoseResume;
  commandId: string | null;
  /** The current motion continues a command sent before a restart: ask, do not send. */
  resuming: boolean;
  rotations: number;
  shakes: number;
  attempts: number;
  readings: Reading[];
  cls: DoseClass | null;
  reason: string | null;
  countedPills: number | null;
  overdue: boolean;
  notice: Notice | null;
  /** The store has the dose as 'dispensing' on this machine's behalf (claimed, or resumed mid-motion). */
  started: boolean;
  /** The store refused the claim: the dose is no longer scheduled. */
  withdrawn: boolean;
  /** A RELEASE lost to an MCU reset was sent once more under a new id. */
  releaseRetried: boolean;
  /** When the pills were presented (this host's first sight of them in the cup, after a restart). */
  presentedAtMs: number | null;
  /** See DoseSpec.cupUnknown; also set by a lift while the pills may be falling (releasing, shaking). */
  cupUnknown: boolean;
  /**
   * The lift the store saw (DoseSpec.cupUnknown) came after every pill so far had fallen (a restart with no motion
   * pending): whatever fell was lifted out with the cup, which is empty now.
   */
  cupEmptied: boolean;
};

export type DoseStore = {
  /** Moves the dose from scheduled to dispensing; false when it was no longer scheduled (nothing may move). */
  startDispensing(doseId: string, attempts: number): boolean;
  resetToScheduled(doseId: string, why: string): void;
  /** The citizen asked for the dose inside its window: from now on it ends dispensed or as a told failure, never missed. */
  markAsked(doseId: string): void;
  /** The press no longer counts (the dose's window moved later than it). */
  forgetAsked(doseId: string): void;
  presented(doseId: string, o: { cls: 'correct' | 'green'; reason: string | null; countedPills: number; attempts: number }): void;
  finish(doseId: string, final: 'taken' | 'missed' | 'failed', o?: { cls?: DoseClass | null; reason?: string | null; countedPills?: number | null; attempts?: number }): boolean;
  markOverdue(doseId: string): boolean;
  recordIntent(doseId: string, name: IntentName, slot: number, bootId: string | null): string;
  completeIntent(commandId: string, result: string): void;
  /** The cup is known to be empty (whatever was in it was lifted out). */
  cupLifted(): void;
};

type Logic<I> = ActorLogic<CallbackSnapshot<I>, AnyEventObject, I, any, any>;

export type DoseDeps = {
  clock: Clock;
  profile: HardwareProfile;
  store: DoseStore;
  bootId(): string | null;
  signal(mode: 'off' | 'remind' | 'present' | 'error'): void;
  /** Sends (or, when resuming, asks after) a ROTATE, RELEASE or SHAKE; reports a MotionOutcome. */
  motion: Logic<MotionInput>;
  /** STATUS of the MCU, with the host's own knowledge of the cup: reports STATUS or STATUS_FAILED. */
  status: Logic<NonReducibleUnknown>;
  /** CLEAR a latched MCU: reports CLEARED or STATUS_FAILED. */
  clear: Logic<NonReducibleUnknown>;
  /** The verdict rules; QA swaps in a deliberately broken one to prove the soak's ground-truth check catches it. */
  judge?: typeof judge;
};

/** Logic that never reports: for walking the machine's graph without an MCU. */
export const silentLogic = <I>() => fromCallback<AnyEventObject, I>(() => undefined) as unknown as Logic<I>;

export function doseWindows(intakeAtMs: number, timing: DoseTiming, nextEarlyAtMs: number | null): DoseWindows {
  const closeAtMs = Math.min(intakeAtMs + timing.closeAfterMin * MIN, nextEarlyAtMs ?? Infinity);
  return {
    earlyAtMs: intakeAtMs - timing.earlyMin * MIN,
    dueAtMs: intakeAtMs,
    overdueAtMs: Math.min(intakeAtMs + timing.overdueAfterMin * MIN, closeAtMs),
    closeAtMs,
  };
}

const verdictOf = (deps: DoseDeps, c: DoseContext): Verdict => (deps.judge ?? judge)(deps.profile, c.dose.expectedPills, c.readings, c.shakes);

const rotateFailure = (e: MotionOutcome): string => {
  if (e.type === 'ROTATED') return e.err === 'JAM' ? 'jam' : e.err === 'LABEL' ? 'label_unreadable' : 'label_mismatch';
  if (e.type === 'LOST') return e.reason;
  if (e.type === 'REFUSED') return e.code === 'LATCHED' ? 'latched' : 'mcu_refused';
  return 'mcu_refused';
};

export function createDoseMachine(deps: DoseDeps) {
  const until = (atMs: number) => Math.max(0, atMs - deps.clock.now());
  // Write-ahead: the command id is committed before the motion actor (started after the entry actions) sends it. The store
  // write is the named action's own; only its result goes into the context.
  const writeIntent = (context: DoseContext, name: IntentName): Partial<DoseContext> | null => {
    if (context.resuming && context.commandId) return null;
    return { commandId: deps.store.recordIntent(context.dose.doseId, name, context.dose.slot, deps.bootId()), resuming: false };
  };
  const motionInput = (name: IntentName) => ({ context }: { context: DoseContext }): MotionInput => ({
    name, commandId: context.commandId ?? '', slot: context.dose.slot, resume: context.resuming, deadlineAtMs: context.dose.windows.closeAtMs,
  });
  // Until the close, or the grace after a presentation just before it.
  const presentedUntil = (c: DoseContext) => Math.max(c.dose.windows.closeAtMs, (c.presentedAtMs ?? deps.clock.now()) + PRESENTED_GRACE_MS);

  return setup({
    types: {} as { context: DoseContext; events: DoseEvent; input: DoseInput },
    actors: { motion: deps.motion, status: deps.status, clear: deps.clear },
    delays: {
      untilEarly: ({ context }) => until(context.dose.windows.earlyAtMs),
      untilDue: ({ context }) => until(context.dose.windows.dueAtMs),
      untilOverdue: ({ context }) => until(context.dose.windows.overdueAtMs),
      untilClose: ({ context }) => until(context.dose.windows.closeAtMs),
      reminderEvery: ({ context }) => context.dose.reminderEveryMs,
      heldRetry: () => HELD_RETRY_MS,
      untilPresentedEnds: ({ context }) => until(presentedUntil(context)),
    },
    guards: {
      pastClose: ({ context }) => deps.clock.now() >= context.dose.windows.closeAtMs,
      pastOverdue: ({ context }) => deps.clock.now() >= context.dose.windows.overdueAtMs,
      pastDue: ({ context }) => deps.clock.now() >= context.dose.windows.dueAtMs,
      pastEarly: ({ context }) => deps.clock.now() >= context.dose.windows.earlyAtMs,
      resumePresented: ({ context }) => context.resume.state === 'presented',
      resumeRotate: ({ context }) => context.resume.state === 'motion' && context.resume.name === 'ROTATE',
      resumeRelease: ({ context }) => context.resume.state === 'motion' && context.resume.name === 'RELEASE',
      resumeShake: ({ context }) => context.resume.state === 'motion' && context.resume.name === 'SHAKE',
      resumeJudging: ({ context }) => context.resume.state === 'dispensing-idle' && context.resume.readings.length > 0,
      resumeIdle: ({ context }) => context.resume.state === 'dispensing-idle',
      resumeAsked: ({ context }) => context.resume.state === 'asked',
      cupUnknown: ({ context }) => context.cupUnknown,
      afterClose: ({ context }) => deps.clock.now() >= context.dose.windows.closeAtMs,
      beforeEarly: ({ context }) => deps.clock.now() < context.dose.windows.earlyAtMs,
      latched: ({ event }) => event.type === 'STATUS' && event.latched,
      cupMissing: ({ event }) => event.type === 'STATUS' && !event.cup,
      cupHoldsDose: ({ event }) => event.type === 'STATUS' && event.cupHoldsDose,
      labelMatches: ({ context, event }) =>
        event.type === 'ROTATED' && event.err === undefined && event.slot === context.dose.slot && event.label === context.dose.label,
      // The cut is the point of no return: not once the window has closed (a long rotation, or a host back from a long outage).
      labelMatchesAfterClose: ({ context, event }) =>
        event.type === 'ROTATED' && event.err === undefined && event.slot === context.dose.slot && event.label === context.dose.label &&
        deps.clock.now() >= context.dose.windows.closeAtMs,
      canRotateAgain: ({ context }) => context.rotations < MAX_ROTATIONS,
      refusedNoCup: ({ event }) => event.type === 'REFUSED' && event.code === 'CUP',
      // The window closed before the MCU could cut (the link's deadline or the MCU's ERR:DEADLINE): nothing left the pouch.
      refusedDeadline: ({ event }) => event.type === 'REFUSED' && event.code === 'DEADLINE',
      refusedSlotEmpty: ({ event }) => event.type === 'REFUSED' && event.code === 'SLOT_EMPTY',
      // Cut before the MCU reset: the pills fell uncounted.
      refusedSlotEmptyAfterReset: ({ context, event }) => event.type === 'REFUSED' && event.code === 'SLOT_EMPTY' && context.releaseRetried,
      refusedRetryable: ({ context, event }) =>
        event.type === 'REFUSED' && (event.code === 'LATCHED' || event.code === 'BUSY') && context.rotations < MAX_ROTATIONS,
      lostWhileResuming: ({ context }) => context.resuming,
      // The MCU reset during the motion and forgot it: the same id must not run again (it would run twice), but a fresh one may.
      // A rotation cuts nothing: turn and read the label again.
      resetMayRotateAgain: ({ context, event }) => event.type === 'LOST' && event.reason === 'mcu_reset' && !context.resuming && context.rotations < MAX_ROTATIONS,
      // A RELEASE once more, straight away (no way out of the dispensing in between that could hide pills already cut): the MCU's
      // non-volatile cut map answers SLOT_EMPTY if the pouch was cut before the reset (yellow), else it is cut now.
      resetMayReleaseAgain: ({ context, event }) => event.type === 'LOST' && event.reason === 'mcu_reset' && !context.resuming && !context.releaseRetried,
      verdictRight: ({ context }) => verdictOf(deps, context).kind === 'right',
      verdictShake: ({ context }) => verdictOf(deps, context).kind === 'shake',
      cupLifted: ({ event }) => event.type === 'CUP' && !event.present,
      notYetOverdue: ({ context }) => !context.overdue,
      withdrawn: ({ context }) => context.withdrawn,
    },
    actions: {
      remind: () => deps.signal('remind'),
      signalOff: () => deps.signal('off'),
      signalPresent: () => deps.signal('present'),
      signalError: () => deps.signal('error'),
      // The citizen asked and the pills still wait in the cup as the window ends: not to be taken now, and the citizen
      // (who may have been on the way) is shown so; a dose never asked for just goes quiet.
      signalMissed: ({ context }) => deps.signal(context.reason === 'left_in_cup' ? 'error' : 'off'),
      markOverdue: enqueueActions(({ context, enqueue }) => {
        if (!context.overdue) deps.store.markOverdue(context.dose.doseId);
        enqueue.assign({ overdue: true });
      }),
      clearNotice: assign({ notice: null }),
      noticeTooEarly: assign({ notice: 'too_early' as Notice }),
      noticeCupMissing: assign({ notice: 'cup_missing' as Notice }),
      noticeCupNotEmpty: assign({ notice: 'cup_not_empty' as Notice }),
      noticeLinkLost: assign({ notice: 'link_lost' as Notice }),
      // Claimed once per dispensing: a retry through clearing finds the dose already 'dispensing' on our behalf.
      startDispensing: enqueueActions(({ context, enqueue }) => {
        if (context.started) return;
        const ok = deps.store.startDispensing(context.dose.doseId, context.attempts);
        enqueue.assign({ started: ok, withdrawn: !ok });
      }),
      markAsked: ({ context }) => deps.store.markAsked(context.dose.doseId),
      forgetAsked: ({ context }) => deps.store.forgetAsked(context.dose.doseId),
      // Held: nothing left the pouch since the last outcome, so the dose is scheduled again (another process may return it).
      giveBackClaim: enqueueActions(({ context, enqueue }) => {
        if (!context.started) return;
        deps.store.resetToScheduled(context.dose.doseId, `held: ${context.notice ?? 'unknown'}`);
        enqueue.assign({ started: false });
      }),
      recordRotate: enqueueActions(({ context, enqueue }) => {
        const written = writeIntent(context, 'ROTATE');
        if (written) enqueue.assign(written);
      }),
      recordRelease: enqueueActions(({ context, enqueue }) => {
        const written = writeIntent(context, 'RELEASE');
        if (written) enqueue.assign(written);
      }),
      recordShake: enqueueActions(({ context, enqueue }) => {
        const written = writeIntent(context, 'SHAKE');
        if (written) enqueue.assign(written);
      }),
      countRotation: assign(({ context }) => ({ rotations: context.rotations + 1, attempts: context.rotations >= 1 ? context.attempts + 1 : context.attempts })),
      countShake: assign(({ context }) => ({ shakes: context.shakes + 1, attempts: context.attempts + 1 })),
      countReleaseRetry: assign(({ context }) => ({ releaseRetried: true, attempts: context.attempts + 1 })),
      completeIntent: ({ context, event }) => {
        if (context.commandId) deps.store.completeIntent(context.commandId, JSON.stringify(event));
      },
      addReading: assign(({ context, event }) =>
        event.type === 'RELEASED' || event.type === 'SHAKEN'
          ? { readings: [...context.readings, { n: event.n, w: event.w, empty: event.empty }], resuming: false }
          : {},
      ),
      doneResuming: assign({ resuming: false }),
      failSlotAlreadyCut: assign({ cls: 'yellow' as const, reason: 'slot_already_cut' }),
      failMcuRefused: assign({ cls: 'yellow' as const, reason: 'mcu_refused' }),
      failMcuReset: assign({ cls: 'yellow' as const, reason: 'mcu_reset' }),
      failUnknownAfterRestart: assign({ cls: 'yellow' as const, reason: 'unknown_after_restart' }),
      failWindowClosed: assign({ cls: 'yellow' as const, reason: 'closed_before_release' }),
      failHeld: assign(({ context }) => ({ cls: 'yellow' as const, reason: context.notice ? `not_dispensed_${context.notice}` : 'not_dispensed' })),
      failCupUnknown: assign({ cls: 'yellow' as const, reason: 'cup_unknown' }),
      failCupLifted: assign(({ context }) => ({ cls: 'yellow' as const, reason: 'cup_lifted_during_release', countedPills: verdictOf(deps, context).pills })),
      noteCupUnknown: assign({ cupUnknown: true }),
      notePresented: assign(({ context }) => (context.presentedAtMs === null ? { presentedAtMs: deps.clock.now() } : {})),
      takenAfterCloseIfLate: assign(({ context }) => (deps.clock.now() >= context.dose.windows.closeAtMs ? { reason: 'taken_after_close' } : {})),
      failFromRotation: assign(({ event }) => ({ cls: 'yellow' as const, reason: rotateFailure(event as MotionOutcome) })),
      failFromVerdict: assign(({ context }) => {
        const v = verdictOf(deps, context);
        return { cls: 'yellow' as const, reason: v.kind === 'yellow' ? v.reason : 'sensor_implausible', countedPills: v.pills };
      }),
      saveRight: enqueueActions(({ context, enqueue }) => {
        const v = verdictOf(deps, context);
        const cls = context.attempts > 1 ? ('green' as const) : ('correct' as const);
        const reason = v.kind === 'right' && v.overlapResolved ? 'overlap_resolved' : null;
        deps.store.presented(context.dose.doseId, { cls, reason, countedPills: v.pills, attempts: context.attempts });
        enqueue.assign({ cls, reason, countedPills: v.pills });
      }),
      saveFailed: ({ context }) => {
        deps.store.finish(context.dose.doseId, 'failed', { cls: 'yellow', reason: context.reason, countedPills: context.countedPills, attempts: context.attempts });
        // A failed dose's pills may be in the cup, unless they were lifted out since they fell.
        if (context.cupEmptied && context.reason === 'cup_lifted_during_release') deps.store.cupLifted();
      },
      saveMissed: ({ context }) => void deps.store.finish(context.dose.doseId, 'missed', { reason: context.reason ?? 'not_taken' }),
      saveTaken: ({ context }) => void deps.store.finish(context.dose.doseId, 'taken', { attempts: context.attempts, reason: context.reason }),
      leftInCup: assign({ reason: 'left_in_cup' }),
    },
  }).createMachine({
    id: 'dose',
    context: ({ input }) => {
      const r = input.resume;
      return {
        dose: input.dose,
        resume: r,
        commandId: r.state === 'motion' ? r.commandId : null,
        resuming: r.state === 'motion',
        rotations: r.state === 'motion' ? r.rotations : 0,
        shakes: r.state === 'motion' ? r.shakes : 0,
        attempts: r.state === 'motion' || r.state === 'dispensing-idle' || r.state === 'presented' ? r.attempts : 1,
        readings: r.state === 'motion' || r.state === 'dispensing-idle' ? r.readings : [],
        cls: r.state === 'presented' ? r.cls : null,
        reason: null,
        countedPills: r.state === 'presented' ? r.countedPills : null,
        overdue: input.dose.overdue,
        notice: null,
        started: r.state === 'motion' || r.state === 'dispensing-idle',
        withdrawn: false,
        releaseRetried: false,
        presentedAtMs: null,
        // A lift before anything fell (held, or no reading yet and no motion pending) took nothing of this dose's.
        cupUnknown: input.dose.cupUnknown === true && r.state !== 'asked' && !(r.state === 'dispensing-idle' && r.readings.length === 0),
        cupEmptied: input.dose.cupUnknown === true && r.state === 'dispensing-idle' && r.readings.length > 0,
      };
    },
    initial: 'boot',
    states: {
      boot: {
        always: [
          { guard: 'resumePresented', target: 'presented' },
          { guard: 'resumeRotate', target: 'dispensing.rotating' },
          { guard: 'resumeRelease', target: 'dispensing.releasing' },
          { guard: 'resumeShake', target: 'dispensing.shaking' },
          { guard: 'resumeJudging', target: 'dispensing.judging' },
          // Asked for before the restart, nothing left the pouch: go on at once, the citizen need not press again.
          { guard: 'resumeIdle', target: 'dispensing' },
          { guard: 'resumeAsked', target: 'dispensing' },
          { target: 'timing' },
        ],
      },
      timing: {
        initial: 'entering',
        states: {
          entering: {
            always: [
              { guard: 'pastClose', target: '#dose.missed' },
              { guard: 'pastOverdue', target: 'overdue' },
              { guard: 'pastDue', target: 'due' },
              { guard: 'pastEarly', target: 'early' },
              { target: 'waiting' },
            ],
          },
          waiting: {
            on: { PRESS: { actions: 'noticeTooEarly' } },
            after: { untilEarly: 'early' },
          },
          early: {
            on: { PRESS: '#dose.dispensing' },
            after: { untilDue: 'due' },
          },
          due: {
            entry: 'remind',
            on: { PRESS: '#dose.dispensing' },
            after: { reminderEvery: { target: 'due', reenter: true }, untilOverdue: 'overdue' },
          },
          overdue: {
            entry: ['markOverdue', 'remind'],
            on: { PRESS: '#dose.dispensing' },
            after: { reminderEvery: { target: 'overdue', reenter: true }, untilClose: '#dose.missed' },
          },
        },
      },
      dispensing: {
        // The press is stored first: from here on the dose ends dispensed or as a registered failure, never as missed.
        entry: ['markAsked', 'clearNotice', 'signalOff'],
        initial: 'checkingCup',
        states: {
          checkingCup: {
            invoke: { src: 'status' },
            on: {
              STATUS: [
                { guard: 'afterClose', target: '#dose.failed', actions: 'failWindowClosed' },
                // The window moved later since the press (a schedule changed while the host was down): wait for it.
                { guard: 'beforeEarly', target: '#dose.timing', actions: ['giveBackClaim', 'forgetAsked'] },
                { guard: 'latched', target: 'clearing' },
                { guard: 'cupMissing', target: '#dose.held', actions: 'noticeCupMissing' },
                { guard: 'cupHoldsDose', target: '#dose.held', actions: 'noticeCupNotEmpty' },
                { target: 'starting' },
              ],
              STATUS_FAILED: { target: '#dose.held', actions: 'noticeLinkLost' },
            },
          },
          starting: {
            entry: 'startDispensing',
            always: [{ guard: 'withdrawn', target: '#dose.withdrawn' }, { target: 'rotating' }],
          },
          clearing: {
            invoke: { src: 'clear' },
            on: {
              CLEARED: 'checkingCup',
              STATUS_FAILED: { target: '#dose.held', actions: 'noticeLinkLost' },
            },
          },
          rotating: {
            entry: ['recordRotate', 'countRotation'],
            invoke: { src: 'motion', input: motionInput('ROTATE') },
            on: {
              ROTATED: [
                { guard: 'labelMatchesAfterClose', target: '#dose.failed', actions: ['completeIntent', 'failWindowClosed'] },
                { guard: 'labelMatches', target: 'releasing', actions: ['completeIntent', 'doneResuming'] },
                { guard: 'canRotateAgain', target: 'clearing', actions: ['completeIntent', 'doneResuming'] },
                { target: '#dose.failed', actions: ['completeIntent', 'failFromRotation'] },
              ],
              REFUSED: [
                { guard: 'refusedDeadline', target: '#dose.failed', actions: ['completeIntent', 'failWindowClosed'] },
                { guard: 'refusedRetryable', target: 'clearing', actions: 'completeIntent' },
                { target: '#dose.failed', actions: ['completeIntent', 'failFromRotation'] },
              ],
              // Nothing is cut by a rotation: whatever became of it, the dose can still be dispensed.
              LOST: [
                { guard: 'resetMayRotateAgain', target: 'clearing', actions: 'completeIntent' },
                { target: '#dose.held', actions: ['completeIntent', 'doneResuming', 'noticeLinkLost'] },
              ],
            },
          },
          releasing: {
            entry: 'recordRelease',
            invoke: { src: 'motion', input: motionInput('RELEASE') },
            on: {
              // Lifted while the pills may be falling: whether they were in the cup is not known.
              CUP: { guard: 'cupLifted', actions: 'noteCupUnknown' },
              RELEASED: { target: 'judging', actions: ['completeIntent', 'addReading'] },
              REFUSED: [
                { guard: 'refusedNoCup', target: '#dose.held', actions: ['completeIntent', 'noticeCupMissing'] },
                { guard: 'refusedDeadline', target: '#dose.failed', actions: ['completeIntent', 'failWindowClosed'] },
                { guard: 'refusedSlotEmptyAfterReset', target: '#dose.failed', actions: ['completeIntent', 'failMcuReset'] },
                { guard: 'refusedSlotEmpty', target: '#dose.failed', actions: ['completeIntent', 'failSlotAlreadyCut'] },
                { guard: 'refusedRetryable', target: 'clearing', actions: 'completeIntent' },
                { target: '#dose.failed', actions: ['completeIntent', 'failMcuRefused'] },
              ],
              LOST: [
                { guard: 'resetMayReleaseAgain', target: 'releasing', reenter: true, actions: ['completeIntent', 'countReleaseRetry'] },
                { guard: 'lostWhileResuming', target: '#dose.failed', actions: ['completeIntent', 'failUnknownAfterRestart'] },
                { target: '#dose.failed', actions: ['completeIntent', 'failMcuReset'] },
              ],
            },
          },
          judging: {
            always: [
              // The cup was lifted while the pills may have been falling (or since, unseen): whether they are in it is not
              // known, and a cup presented empty would be recorded taken. A registered failure instead.
              { guard: 'cupUnknown', target: '#dose.failed', actions: 'failCupLifted' },
              { guard: 'verdictRight', target: '#dose.presented', actions: 'saveRight' },
              { guard: 'verdictShake', target: 'shaking' },
              { target: '#dose.failed', actions: 'failFromVerdict' },
            ],
          },
          shaking: {
            entry: ['recordShake', 'countShake'],
            invoke: { src: 'motion', input: motionInput('SHAKE') },
            on: {
              CUP: { guard: 'cupLifted', actions: 'noteCupUnknown' },
              SHAKEN: { target: 'judging', actions: ['completeIntent', 'addReading'] },
              REFUSED: [
                { guard: 'refusedDeadline', target: '#dose.failed', actions: ['completeIntent', 'failFromVerdict'] },
                { target: '#dose.failed', actions: ['completeIntent', 'failMcuRefused'] },
              ],
              LOST: [
                { guard: 'lostWhileResuming', target: '#dose.failed', actions: ['completeIntent', 'failUnknownAfterRestart'] },
                { target: '#dose.failed', actions: ['completeIntent', 'failMcuReset'] },
              ],
            },
          },
        },
      },
      held: {
        entry: ['giveBackClaim', 'signalError'],
        on: { PRESS: '#dose.dispensing' },
        after: {
          heldRetry: '#dose.dispensing',
          untilOverdue: { guard: 'notYetOverdue', actions: 'markOverdue' },
          untilClose: { target: 'failed', actions: 'failHeld' },
        },
      },
      presented: {
        entry: ['notePresented', 'signalPresent'],
        on: {
          CUP: { guard: 'cupLifted', target: 'taken', actions: 'takenAfterCloseIfLate' },
        },
        after: {
          reminderEvery: { target: 'presented', reenter: true },
          untilOverdue: { guard: 'notYetOverdue', actions: 'markOverdue' },
          untilPresentedEnds: [
            { guard: 'cupUnknown', target: 'failed', actions: 'failCupUnknown' },
            { target: 'missed', actions: 'leftInCup' },
          ],
        },
      },
      taken: { type: 'final', entry: ['signalOff', 'saveTaken'] },
      missed: { type: 'final', entry: ['signalMissed', 'saveMissed'] },
      failed: { type: 'final', entry: ['signalError', 'saveFailed'] },
      // Not ours any more (the store says so): stop without motion and without writing; the controller picks the next dose.
      withdrawn: { type: 'final', entry: 'signalOff' },
    },
  });
}

export type DoseMachine = ReturnType<typeof createDoseMachine>;

// The exactly-once motion exchange (XState v5): send a motion command, await its ack and outcome, ask the MCU after a loss.
//
// sending          the command is on the link → ack OK: awaitingOutcome; refused: done; no ack: querying
// awaitingOutcome  the outcome event ends it; none in time, a ready link or an MCU reset: querying
// querying         QUERY about the id → done (its outcome), running (ask again shortly), aborted (LOST), none
//                  (never received: sent once more under the same id while the window is open, else LOST or
//                  DEADLINE), no answer (ask again shortly, or when the link is ready)
// resuming         a host restart starts in querying: it asks before anything else
//
// The link (`send`, `query`) is invoked actor logic; link events come in as OUTCOME, MCU_RESET and LINK_READY. The
// machine never sends a command under its id twice unless the MCU said it never received it, and never once the
// deadline (the dose's window close) has passed.

import { assign, setup, type ActorLogic, type AnyEventObject, type CallbackSnapshot } from 'xstate';
import type { Clock } from '../../../protocol/src/clock.js';
import type { MotionInput, MotionOutcome } from '../dosing/dose-machine.js';

/** How long the host waits for a motion's outcome event, beyond the lease, before asking the MCU about it. */
export const OUTCOME_WAIT_EXTRA_MS = 30_000;
export const QUERY_RETRY_MS = 1000;

type QueryAnswer = 'done' | 'running' | 'aborted' | 'none';

export type ExchangeEvent =
  | { type: 'ACK_OK' }
  | { type: 'ACK_REFUSED'; code: string }
  /** No ack: the link lost it, timed out, saw the MCU reset (`reset`) or used up the deadline. */
  | { type: 'SEND_FAILED'; reset: boolean }
  | { type: 'QUERY_ANSWER'; st: QueryAnswer; outcome?: MotionOutcome }
  /** No answer to a QUERY; `notReady`: the link is down, ask again when it is ready. */
  | { type: 'QUERY_FAILED'; notReady: boolean }
  | { type: 'OUTCOME'; outcome: MotionOutcome }
  | { type: 'MCU_RESET' }
  | { type: 'LINK_READY' };

type Logic<I> = ActorLogic<CallbackSnapshot<I>, AnyEventObject, I, any, any>;

export type ExchangeDeps = {
  clock: Clock;
  leaseMs: number;
  /** Sends the command once; reports ACK_OK, ACK_REFUSED or SEND_FAILED. */
  send: Logic<MotionInput>;
  /** Asks about the id; reports QUERY_ANSWER or QUERY_FAILED. */
  query: Logic<MotionInput>;
};

export type ExchangeContext = {
  input: MotionInput;
  /** The MCU reset while this motion was in hand. */
  resetSeen: boolean;
  /** Sent once more under the same id after the MCU said it never received it. */
  resent: boolean;
  outcome: MotionOutcome | null;
};

const lost = (c: ExchangeContext): MotionOutcome => ({ type: 'LOST', reason: c.resetSeen ? 'mcu_reset' : 'unknown' });

export function createMotionExchange(deps: ExchangeDeps) {
  return setup({
    types: {} as { context: ExchangeContext; events: ExchangeEvent; input: MotionInput; output: MotionOutcome },
    actors: { send: deps.send, query: deps.query },
    delays: {
      outcomeWait: () => deps.leaseMs + OUTCOME_WAIT_EXTRA_MS,
      queryRetry: () => QUERY_RETRY_MS,
    },
    guards: {
      resuming: ({ context }) => context.input.resume,
      resentSlotEmpty: ({ context, event }) => event.type === 'ACK_REFUSED' && event.code === 'SLOT_EMPTY' && context.resent,
      sendReset: ({ event }) => event.type === 'SEND_FAILED' && event.reset,
      answerDone: ({ event }) => event.type === 'QUERY_ANSWER' && event.st === 'done',
      answerRunning: ({ event }) => event.type === 'QUERY_ANSWER' && event.st === 'running',
      answerAborted: ({ event }) => event.type === 'QUERY_ANSWER' && event.st === 'aborted',
      // `none` after the one re-send: give up rather than loop.
      noneAfterResend: ({ context, event }) => event.type === 'QUERY_ANSWER' && event.st === 'none' && context.resent,
      // Never (re)sent past the window's close.
      nonePastDeadline: ({ context, event }) => event.type === 'QUERY_ANSWER' && event.st === 'none' && deps.clock.now() >= context.input.deadlineAtMs,
      notReady: ({ event }) => event.type === 'QUERY_FAILED' && event.notReady,
    },
    actions: {
      noteReset: assign({ resetSeen: true }),
      noteResent: assign({ resent: true }),
      takeOutcome: assign(({ event }) => (event.type === 'OUTCOME' ? { outcome: event.outcome } : {})),
      takeAnswer: assign(({ event }) => (event.type === 'QUERY_ANSWER' ? { outcome: event.outcome ?? { type: 'LOST', reason: 'unknown' } } : {})),
      takeRefusal: assign(({ event }) => (event.type === 'ACK_REFUSED' ? { outcome: { type: 'REFUSED', code: event.code } as MotionOutcome } : {})),
      takeLost: assign(({ context }) => ({ outcome: lost(context) })),
      takeAborted: assign({ outcome: { type: 'LOST', reason: 'mcu_reset' } as MotionOutcome }),
      takeDeadline: assign({ outcome: { type: 'REFUSED', code: 'DEADLINE' } as MotionOutcome }),
    },
  }).createMachine({
    id: 'motion',
    context: ({ input }) => ({ input, resetSeen: false, resent: false, outcome: null }),
    initial: 'start',
    output: ({ context }) => context.outcome ?? lost(context),
    // The outcome event ends the exchange in any state; a reset means the MCU's RAM is gone: ask about the id.
    on: {
      OUTCOME: { target: '.done', actions: 'takeOutcome' },
      MCU_RESET: { target: '.querying', actions: 'noteReset' },
    },
    states: {
      start: {
        always: [{ guard: 'resuming', target: 'querying' }, { target: 'sending' }],
      },
      sending: {
        invoke: { src: 'send', input: ({ context }) => context.input },
        on: {
          ACK_OK: 'awaitingOutcome',
          ACK_REFUSED: [
            // Sent again after "none", and the pouch is already cut: it was cut before (the MCU reset in between).
            { guard: 'resentSlotEmpty', target: 'done', actions: 'takeLost' },
            { target: 'done', actions: 'takeRefusal' },
          ],
          SEND_FAILED: [{ guard: 'sendReset', target: 'querying', actions: 'noteReset' }, { target: 'querying' }],
        },
      },
      awaitingOutcome: {
        on: { LINK_READY: 'querying' },
        after: { outcomeWait: 'querying' },
      },
      querying: {
        invoke: { src: 'query', input: ({ context }) => context.input },
        on: {
          QUERY_ANSWER: [
            { guard: 'answerDone', target: 'done', actions: 'takeAnswer' },
            { guard: 'answerRunning', target: 'pausing' },
            { guard: 'answerAborted', target: 'done', actions: 'takeAborted' },
            { guard: 'noneAfterResend', target: 'done', actions: 'takeLost' },
            { guard: 'nonePastDeadline', target: 'done', actions: 'takeDeadline' },
            // The MCU keeps its ids across resets: `none` means it never received the command.
            { target: 'sending', actions: 'noteResent' },
          ],
          QUERY_FAILED: [{ guard: 'notReady', target: 'waitingForLink' }, { target: 'pausing' }],
        },
      },
      pausing: {
        on: { LINK_READY: 'querying' },
        after: { queryRetry: 'querying' },
      },
      waitingForLink: {
        on: { LINK_READY: 'querying' },
      },
      done: { type: 'final' },
    },
  });
}

export type MotionExchange = ReturnType<typeof createMotionExchange>;

// The controller's lifecycle (XState v5): nothing moves before the store is reconciled with the MCU, and every ready of
// the link looks at the cup's lift count again.
//
// stopped → waitingForLink → reconciling (STATUS) → running ; running → rechecking (STATUS at a ready) → running
// A failed STATUS while reconciling waits for the next ready; while rechecking, the running dose goes on.
//
// Everything it does to the world is a named action or the `status` actor given in `deps`.

import { setup, type ActorLogic, type AnyEventObject, type CallbackSnapshot, type NonReducibleUnknown } from 'xstate';

type Logic<I> = ActorLogic<CallbackSnapshot<I>, AnyEventObject, I, any, any>;

export type LifecycleEvent =
  | { type: 'START'; linkReady: boolean }
  | { type: 'STOP' }
  | { type: 'LINK_READY' }
  | { type: 'STATUS'; lifts: number; boot: string; cup: number }
  | { type: 'STATUS_FAILED' };

export type LifecycleDeps = {
  /** STATUS of the MCU: reports STATUS or STATUS_FAILED. */
  status: Logic<NonReducibleUnknown>;
  /** At every ready: the MCU's boot id against the stored one (a reset while no host listened is logged). */
  noteBoot(): void;
  /** At every ready: the light and sound as they should be (a SIGNAL lost, or forgotten by an MCU reset). */
  sendSignal(): void;
  /** The first STATUS after start: the lifts since the host last looked, then the schedule runs. */
  reconciled(e: { lifts: number; boot: string; cup: number }): void;
  /** A STATUS at a later ready: the lifts since the host last looked. */
  rechecked(e: { lifts: number }): void;
  reconcileFailed(): void;
};

export function createLifecycle(deps: LifecycleDeps) {
  return setup({
    types: {} as { events: LifecycleEvent },
    actors: { status: deps.status },
    guards: {
      linkReady: ({ event }) => event.type === 'START' && event.linkReady,
    },
    actions: {
      noteBoot: () => deps.noteBoot(),
      sendSignal: () => deps.sendSignal(),
      reconciled: ({ event }) => {
        if (event.type === 'STATUS') deps.reconciled(event);
      },
      rechecked: ({ event }) => {
        if (event.type === 'STATUS') deps.rechecked(event);
      },
      reconcileFailed: () => deps.reconcileFailed(),
    },
  }).createMachine({
    id: 'controller',
    initial: 'stopped',
    on: { STOP: '.stopped' },
    states: {
      stopped: {
        on: { START: [{ guard: 'linkReady', target: 'reconciling' }, { target: 'waitingForLink' }] },
      },
      waitingForLink: {
        on: { LINK_READY: 'reconciling' },
      },
      reconciling: {
        entry: ['noteBoot', 'sendSignal'],
        invoke: { src: 'status' },
        on: {
          STATUS: { target: 'running', actions: 'reconciled' },
          STATUS_FAILED: { target: 'waitingForLink', actions: 'reconcileFailed' },
          LINK_READY: { target: 'reconciling', reenter: true },
        },
      },
      running: {
        on: { LINK_READY: 'rechecking' },
      },
      rechecking: {
        entry: ['noteBoot', 'sendSignal'],
        invoke: { src: 'status' },
        on: {
          STATUS: { target: 'running', actions: 'rechecked' },
          STATUS_FAILED: 'running',
          LINK_READY: { target: 'rechecking', reenter: true },
        },
      },
    },
  });
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

// Which recovery paths a soak ran: every transition of the dose machine, counted as the real controller takes it.
//
// The controller lets the soak watch its dose machines (xstate's inspection
// events); each microstep names the transitions it took. A transition is
// named `<state> <event> [guard] → <target>`, the same way for the list of
// all of them (read from the machine itself) and for the ones that ran, so the
// report can show each with how often it ran, and which never did.

import type { InspectionEvent } from 'xstate';
import { ManualClock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { createDoseMachine, silentLogic, type DoseStore } from '../../../firmware-host/src/dosing/dose-machine.js';

type TransitionLike = {
  source: { id: string };
  target?: readonly { id: string }[] | undefined;
  eventType: string;
  guard?: unknown;
};
type NodeLike = { transitions: Map<string, TransitionLike[]>; always?: TransitionLike[] | undefined; states: Record<string, NodeLike> };

function guardName(g: unknown): string {
  if (!g) return '';
  if (typeof g === 'string') return g;
  if (typeof g === 'object' && g !== null && 'type' in g) return String((g as { type: unknown }).type);
  return 'inline';
}

/** `after` events carry the machine's generated delay ids; the delay's name is what a reader recognises. */
function eventName(e: string): string {
  const m = /^xstate\.after\.([^.]+)\./.exec(e);
  return m ? `after ${m[1]}` : e;
}

const names = new WeakMap<object, string>();

export function transitionName(t: TransitionLike): string {
  let n = names.get(t);
  if (n === undefined) {
    const g = guardName(t.guard);
    const to = t.target && t.target.length > 0 ? t.target.map((x) => x.id).join(',') : '(stays)';
    n = `${t.source.id} ${t.eventType === '' ? 'always' : eventName(t.eventType)}${g ? ` [${g}]` : ''} → ${to}`;
    names.set(t, n);
  }
  return n;
}

/** Every transition of the dose machine, read from the machine (its behaviour stubbed: only its shape matters). */
export function allTransitions(): string[] {
  const store = new Proxy({}, { get: () => () => false }) as unknown as DoseStore;
  const machine = createDoseMachine({
    clock: new ManualClock(), profile: loadProfile('dosis-r1'), store, bootId: () => null, signal: () => undefined,
    motion: silentLogic(), status: silentLogic(), clear: silentLogic(),
  });
  const out = new Set<string>();
  const walk = (node: NodeLike) => {
    for (const list of node.transitions.values()) for (const t of list) out.add(transitionName(t));
    for (const t of node.always ?? []) out.add(transitionName(t));
    for (const child of Object.values(node.states)) walk(child);
  };
  walk((machine as unknown as { root: NodeLike }).root);
  return [...out].sort();
}

/** Counts the transitions the dose machines take, into `into`. */
export function countTransitions(into: Record<string, number>): (e: InspectionEvent) => void {
  return (e) => {
    if (e.type !== '@xstate.microstep') return;
    for (const t of (e as unknown as { _transitions: TransitionLike[] })._transitions) {
      const n = transitionName(t);
      into[n] = (into[n] ?? 0) + 1;
    }
  };
}

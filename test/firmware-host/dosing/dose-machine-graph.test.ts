// Path coverage of the dose machine: @xstate/graph's shortest paths reach every distinct state from every kind of start, and
// every event is tried from each; every state and transition must be reached. States are keyed by what decides their next
// step (the default key, the whole context, never repeats here and the walk would not end).
import { describe, expect, it } from 'vitest';
import { createActor, type AnyEventObject, type AnyStateNode, type AnyTransitionDefinition } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import { ManualClock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import {
  MAX_ROTATIONS, createDoseMachine, doseWindows, silentLogic, type DoseContext, type DoseEvent, type DoseInput, type DoseResume, type DoseStore, type MotionInput,
} from '../../../firmware-host/src/dosing/dose-machine.js';
import { DEFAULT_TIMING } from '../../../firmware-host/src/roll/types.js';
import type { NonReducibleUnknown } from 'xstate';

const profile = loadProfile('dosis-r1');
const T = Date.UTC(2027, 0, 4, 8, 0);
const H = 3600_000;

// Command ids depend only on the motion, so one logical state serialises the same however the walk reached it.
const INTENT_IDS = { ROTATE: '0000000A', RELEASE: '0000000B', SHAKE: '0000000C' } as const;

function fakeStore(claims = true): DoseStore & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    startDispensing: () => (calls.push('startDispensing'), claims),
    resetToScheduled: () => void calls.push('resetToScheduled'),
    markAsked: () => void calls.push('markAsked'),
    forgetAsked: () => void calls.push('forgetAsked'),
    presented: () => void calls.push('presented'),
    finish: (_id, final) => (calls.push(`finish:${final}`), true),
    markOverdue: () => (calls.push('markOverdue'), true),
    recordIntent: (_d, name) => (calls.push(`intent:${name}`), INTENT_IDS[name]),
    completeIntent: () => void calls.push('completeIntent'),
    cupLifted: () => void calls.push('cupLifted'),
  };
}

function machineAt(nowMs: number, claims = true) {
  const clock = new ManualClock(nowMs);
  return createDoseMachine({
    clock, profile, store: fakeStore(claims), bootId: () => 'B0000001', signal: () => undefined,
    motion: silentLogic<MotionInput>(), status: silentLogic<NonReducibleUnknown>(), clear: silentLogic<NonReducibleUnknown>(),
  });
}

const dose = { doseId: 'R1-001', slot: 0, label: 'R1-001', expectedPills: 3, windows: doseWindows(T, DEFAULT_TIMING, T + 4 * H - 30 * 60_000), reminderEveryMs: 5 * 60_000, overdue: false };

/** Events with the payloads that tell the guards apart. */
const PAYLOAD_EVENTS: DoseEvent[] = [
  { type: 'PRESS' },
  { type: 'CUP', present: false },
  { type: 'CUP', present: true },
  { type: 'STATUS', cup: true, cupHoldsDose: false, latched: false },
  { type: 'STATUS', cup: true, cupHoldsDose: false, latched: true },
  { type: 'STATUS', cup: false, cupHoldsDose: false, latched: false },
  { type: 'STATUS', cup: true, cupHoldsDose: true, latched: false },
  { type: 'STATUS_FAILED' },
  { type: 'CLEARED' },
  { type: 'ROTATED', slot: 0, label: 'R1-001' },
  { type: 'ROTATED', slot: 0, err: 'JAM' },
  { type: 'ROTATED', slot: 0, err: 'LABEL' },
  { type: 'ROTATED', slot: 0, label: 'R1-002' },
  { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }, // right
  { type: 'RELEASED', n: 2, w: [12, 12], empty: false }, // short, a pill stuck
  { type: 'RELEASED', n: 2, w: [12, 18], empty: true }, // short, but a pulse long enough for two
  { type: 'RELEASED', n: 2, w: [12, 12], empty: true }, // short, pouch empty: the sensor missed one
  { type: 'RELEASED', n: 4, w: [12, 12, 12, 12], empty: true }, // over
  { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: false }, // right count, pouch not empty
  { type: 'SHAKEN', n: 1, w: [12], empty: true },
  { type: 'SHAKEN', n: 0, w: [], empty: false },
  { type: 'REFUSED', code: 'CUP' },
  { type: 'REFUSED', code: 'SLOT_EMPTY' },
  { type: 'REFUSED', code: 'LATCHED' },
  { type: 'REFUSED', code: 'RANGE' },
  { type: 'REFUSED', code: 'DEADLINE' },
  { type: 'LOST', reason: 'mcu_reset' },
];

function allNodes(machine: ReturnType<typeof machineAt>): AnyStateNode[] {
  return getStateNodes(machine.root);
}

/** Delayed transitions are events too: `xstate.after.<delay>.<state id>`. */
function delayEvents(machine: ReturnType<typeof machineAt>): AnyEventObject[] {
  const out: AnyEventObject[] = [];
  for (const node of allNodes(machine)) for (const t of node.after) out.push({ type: t.eventType });
  return out;
}

function transitionsOf(node: AnyStateNode): AnyTransitionDefinition[] {
  return [...node.transitions.values()].flat().concat(node.always ?? []);
}

const readings = [{ n: 2, w: [12, 12], empty: false }];
const STARTS: { name: string; nowMs: number; resume: DoseResume; claims?: boolean; cupUnknown?: boolean }[] = [
  { name: 'before the early window', nowMs: T - 2 * H, resume: { state: 'timing' } },
  { name: 'in the early window', nowMs: T - 10 * 60_000, resume: { state: 'timing' } },
  { name: 'due', nowMs: T + 60_000, resume: { state: 'timing' } },
  { name: 'due, but returned by another process before the claim', nowMs: T + 60_000, resume: { state: 'timing' }, claims: false },
  { name: 'overdue', nowMs: T + 45 * 60_000, resume: { state: 'timing' } },
  { name: 'closed', nowMs: T + 3 * H, resume: { state: 'timing' } },
  { name: 'presented before a restart', nowMs: T + 60_000, resume: { state: 'presented', cls: 'correct', countedPills: 3, attempts: 1 } },
  { name: 'presented, a cup lift unseen during its release', nowMs: T + 60_000, resume: { state: 'presented', cls: 'correct', countedPills: 3, attempts: 1 }, cupUnknown: true },
  { name: 'mid-rotation', nowMs: T + 60_000, resume: { state: 'motion', name: 'ROTATE', commandId: '00000009', readings: [], attempts: 1, rotations: 0, shakes: 0 } },
  { name: 'mid-rotation, back after the window closed', nowMs: T + 3 * H, resume: { state: 'motion', name: 'ROTATE', commandId: '00000009', readings: [], attempts: 1, rotations: 0, shakes: 0 } },
  { name: 'mid-release', nowMs: T + 60_000, resume: { state: 'motion', name: 'RELEASE', commandId: '00000009', readings: [], attempts: 1, rotations: 1, shakes: 0 } },
  { name: 'mid-shake', nowMs: T + 60_000, resume: { state: 'motion', name: 'SHAKE', commandId: '00000009', readings, attempts: 1, rotations: 1, shakes: 0 } },
  { name: 'between motions', nowMs: T + 60_000, resume: { state: 'dispensing-idle', readings, attempts: 1 } },
  { name: 'dispensing before any motion', nowMs: T + 60_000, resume: { state: 'dispensing-idle', readings: [], attempts: 1 } },
  { name: 'asked for, held before a restart', nowMs: T + 60_000, resume: { state: 'asked' } },
  { name: 'asked for, its window moved later while the host was down', nowMs: T - 2 * H, resume: { state: 'asked' } },
];

type Snap = { value: unknown; status: string; context: DoseContext; _nodes: AnyStateNode[] };

/**
 * The parts of a snapshot that decide what it does next. The notice and the ids only label it; the guards ask only whether
 * rotations reached MAX_ROTATIONS and whether attempts passed one (each citizen press after an abandoned rotation adds one).
 */
function keyOf(s: Snap): string {
  const c = s.context;
  return JSON.stringify([s.value, s.status, Math.min(c.attempts, 2), Math.min(c.rotations, MAX_ROTATIONS), c.shakes, c.readings, c.cls, c.reason, c.started, c.withdrawn, c.resuming, c.releaseRetried, c.overdue, c.cupUnknown]);
}

/** Replays a path of events in a fresh actor, reporting every transition it takes and every state it enters. */
function replay(machine: ReturnType<typeof machineAt>, input: DoseInput, path: readonly DoseEvent[], seen: { taken: Set<AnyTransitionDefinition>; visited: Set<string> }): Snap {
  const actor = createActor(machine, {
    input,
    inspect: (ev) => {
      if (ev.type !== '@xstate.microstep') return;
      const m = ev as unknown as { _transitions: AnyTransitionDefinition[]; snapshot: Snap };
      for (const t of m._transitions) seen.taken.add(t);
      for (const n of m.snapshot._nodes) seen.visited.add(n.id);
    },
  });
  actor.start();
  for (const e of path) actor.send(e);
  const snap = actor.getSnapshot() as unknown as Snap;
  for (const n of snap._nodes) seen.visited.add(n.id);
  actor.stop();
  return snap;
}

describe('dose machine path coverage', () => {
  // Some 30 s on a loaded machine: a long walk, but one that must finish.
  it('reaches every state and takes every transition, from every kind of start', { timeout: 180_000 }, () => {
    const seen = { taken: new Set<AnyTransitionDefinition>(), visited: new Set<string>() };
    let machine = machineAt(T);
    let states = 0;
    let walks = 0;
    const finals = new Set<string>();
    for (const start of STARTS) {
      machine = machineAt(start.nowMs, start.claims ?? true);
      const input: DoseInput = { dose: { ...dose, cupUnknown: start.cupUnknown ?? false }, resume: start.resume };
      const events = [...PAYLOAD_EVENTS, ...delayEvents(machine)] as DoseEvent[];
      // Shortest paths to every distinct state (keyed by what decides its next step), then every event tried from each:
      // that takes every edge, not only the ones on shortest paths.
      const paths = getShortestPaths(machine, { events, input, serializeState: (snap) => keyOf(snap as unknown as Snap), limit: 200_000 });
      const known = new Set(paths.map((q) => keyOf(q.state as unknown as Snap)));
      for (const path of paths) {
        const steps = path.steps.map((st) => st.event as DoseEvent).filter((e) => !e.type.startsWith('xstate.init'));
        const reached = replay(machine, input, steps, seen);
        if (reached.status === 'done') {
          finals.add(String(reached.value));
          continue;
        }
        for (const event of events) {
          const snap = replay(machine, input, [...steps, event], seen);
          walks++;
          if (snap.status === 'done') finals.add(String(snap.value));
          // Every state a step leads to is one the shortest paths reach: the walk is closed.
          if (!known.has(keyOf(snap))) expect.fail(`${start.name}: ${keyOf(snap)} is not among the shortest paths' states`);
        }
      }
      states += known.size;
    }
    const nodes = allNodes(machine).map((n) => n.id);
    // A transient state (only `always` transitions) is never at rest in a snapshot: it counts as reached through its transitions.
    const passedThrough = (id: string) => [...seen.taken].some((t) => t.source.id === id && t.eventType === '');
    const missingStates = nodes.filter((id) => !seen.visited.has(id) && !passedThrough(id));
    // Transition definitions differ per machine instance: compare by source state, event, guard and target.
    const key = (t: AnyTransitionDefinition) => `${t.source.id} --${t.eventType}${t.guard ? `[${typeof t.guard === 'string' ? t.guard : (t.guard as { type?: string }).type ?? 'inline'}]` : ''}--> ${(t.target ?? []).map((s) => s.id).join(',') || '(self)'}`;
    const takenKeys = new Set([...seen.taken].map(key));
    const all = allNodes(machine).flatMap(transitionsOf).map(key);
    const missingTransitions = all.filter((k) => !takenKeys.has(k));
    expect(missingStates).toEqual([]);
    expect(missingTransitions).toEqual([]);
    expect(all.length).toBeGreaterThan(40);
    expect([...finals].sort()).toEqual(['failed', 'missed', 'taken', 'withdrawn']);
    expect(states).toBeGreaterThan(100);
    expect(walks).toBeGreaterThan(states);
  });
});

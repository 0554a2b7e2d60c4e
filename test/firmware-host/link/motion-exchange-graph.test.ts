// Path coverage of the motion exchange: @xstate/graph's shortest paths reach every distinct state from a fresh send, a
// resumed motion and one past its deadline; every event is tried from each; every state and transition must be reached.
// Then the safety property on every walk: the command goes out under its id at most twice, the second time only after
// the MCU said it never received it, and never once the deadline has passed.
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, type AnyEventObject, type AnyStateNode, type AnyTransitionDefinition } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import { ManualClock } from '../../../protocol/src/clock.js';
import { createMotionExchange, type ExchangeContext, type ExchangeEvent } from '../../../firmware-host/src/link/motion-exchange.js';
import type { MotionInput } from '../../../firmware-host/src/dosing/dose-machine.js';

const T = Date.UTC(2027, 0, 4, 8, 0);

/** Logic that never reports, counting its starts: the events come from the walk. */
function counting(starts: { n: number }) {
  return fromCallback<AnyEventObject, MotionInput>(() => {
    starts.n++;
  });
}

function machineAt(nowMs: number, sends = { n: 0 }) {
  const clock = new ManualClock(nowMs);
  return { clock, sends, machine: createMotionExchange({ clock, leaseMs: 5000, send: counting(sends), query: counting({ n: 0 }) }) };
}

const EVENTS: ExchangeEvent[] = [
  { type: 'ACK_OK' },
  { type: 'ACK_REFUSED', code: 'SLOT_EMPTY' },
  { type: 'ACK_REFUSED', code: 'CUP' },
  { type: 'SEND_FAILED', reset: false },
  { type: 'SEND_FAILED', reset: true },
  { type: 'QUERY_ANSWER', st: 'done', outcome: { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true } },
  { type: 'QUERY_ANSWER', st: 'running' },
  { type: 'QUERY_ANSWER', st: 'aborted' },
  { type: 'QUERY_ANSWER', st: 'none' },
  { type: 'QUERY_FAILED', notReady: false },
  { type: 'QUERY_FAILED', notReady: true },
  { type: 'OUTCOME', outcome: { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true } },
  { type: 'MCU_RESET' },
  { type: 'LINK_READY' },
];

const input = (resume: boolean, deadlineAtMs: number): MotionInput => ({ name: 'RELEASE', commandId: '0000000B', slot: 4, resume, deadlineAtMs });
const STARTS = [
  { name: 'a fresh send', nowMs: T, input: input(false, T + 60_000) },
  { name: 'a motion resumed after a restart', nowMs: T, input: input(true, T + 60_000) },
  { name: 'resumed past its deadline', nowMs: T + 120_000, input: input(true, T + 60_000) },
];

type Snap = { value: unknown; status: string; context: ExchangeContext; output?: unknown; _nodes: AnyStateNode[] };
const keyOf = (s: Snap) => JSON.stringify([s.value, s.status, s.context.resetSeen, s.context.resent, s.context.outcome]);

function delayEvents(root: AnyStateNode): AnyEventObject[] {
  return getStateNodes(root).flatMap((n) => n.after.map((t) => ({ type: t.eventType })));
}

function replay(start: (typeof STARTS)[number], path: readonly ExchangeEvent[], seen: { taken: Set<AnyTransitionDefinition>; visited: Set<string> }) {
  const { machine, sends } = machineAt(start.nowMs);
  const actor = createActor(machine, {
    input: start.input,
    inspect: (ev) => {
      if (ev.type !== '@xstate.microstep') return;
      const m = ev as unknown as { _transitions: AnyTransitionDefinition[]; snapshot: Snap };
      for (const t of m._transitions) seen.taken.add(t);
      for (const n of m.snapshot._nodes) seen.visited.add(n.id);
    },
  });
  actor.start();
  for (const e of path) if (actor.getSnapshot().status === 'active') actor.send(e as ExchangeEvent);
  const snap = actor.getSnapshot() as unknown as Snap;
  for (const n of snap._nodes) seen.visited.add(n.id);
  actor.stop();
  return { snap, sends: sends.n };
}

describe('motion exchange path coverage', () => {
  it('reaches every state and takes every transition; sends at most twice, the second only after "none", never past the deadline', () => {
    const seen = { taken: new Set<AnyTransitionDefinition>(), visited: new Set<string>() };
    let walks = 0;
    const outputs = new Set<string>();
    let root: AnyStateNode | undefined;
    for (const start of STARTS) {
      const { machine } = machineAt(start.nowMs);
      root = machine.root;
      const events = [...EVENTS, ...delayEvents(machine.root)] as ExchangeEvent[];
      const paths = getShortestPaths(machine, { events, input: start.input, serializeState: (s) => keyOf(s as unknown as Snap), limit: 50_000 });
      for (const path of paths) {
        const steps = path.steps.map((st) => st.event as ExchangeEvent).filter((e) => !e.type.startsWith('xstate.init'));
        for (const tail of [[], ...events.map((e) => [e])]) {
          const walk = [...steps, ...tail];
          const { snap, sends } = replay(start, walk, seen);
          walks++;
          if (snap.status === 'done') outputs.add((snap.output as { type: string }).type);
          // A resumed motion asks first; a fresh one sends once; only a "none" answer allows the one re-send.
          const nones = walk.filter((e) => e.type === 'QUERY_ANSWER' && e.st === 'none').length;
          const allowed = (start.input.resume ? 0 : 1) + Math.min(1, nones);
          expect(sends, `${start.name}: ${walk.map((e) => e.type).join(' → ')}`).toBeLessThanOrEqual(allowed);
          if (start.nowMs >= start.input.deadlineAtMs) expect(sends, `${start.name}: sent past the deadline`).toBe(0);
        }
      }
    }
    const nodes = getStateNodes(root!).map((n) => n.id);
    const passedThrough = (id: string) => [...seen.taken].some((t) => t.source.id === id && t.eventType === '');
    expect(nodes.filter((id) => !seen.visited.has(id) && !passedThrough(id))).toEqual([]);
    const key = (t: AnyTransitionDefinition) => `${t.source.id} --${t.eventType}${t.guard ? `[${typeof t.guard === 'string' ? t.guard : (t.guard as { type?: string }).type ?? 'inline'}]` : ''}--> ${(t.target ?? []).map((s) => s.id).join(',') || '(self)'}`;
    const takenKeys = new Set([...seen.taken].map(key));
    const all = getStateNodes(root!).flatMap((n) => [...n.transitions.values()].flat().concat(n.always ?? [])).map(key);
    expect(all.filter((k) => !takenKeys.has(k))).toEqual([]);
    expect(all.length).toBeGreaterThanOrEqual(20);
    expect([...outputs].sort()).toEqual(['LOST', 'REFUSED', 'RELEASED']);
    expect(walks).toBeGreaterThan(100);
  });
});

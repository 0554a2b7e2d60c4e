// Path coverage of the controller's lifecycle: every state and transition reached by @xstate/graph's shortest paths plus
// every event from each; on every walk, the schedule runs only after a STATUS answered since the last start.
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, type AnyEventObject, type AnyStateNode, type AnyTransitionDefinition, type NonReducibleUnknown } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import { createLifecycle, type LifecycleEvent } from '../../firmware-host/src/controller-lifecycle.js';

const EVENTS: LifecycleEvent[] = [
  { type: 'START', linkReady: true },
  { type: 'START', linkReady: false },
  { type: 'STOP' },
  { type: 'LINK_READY' },
  { type: 'STATUS', lifts: 3, boot: 'B0000001', cup: 1 },
  { type: 'STATUS_FAILED' },
];

function machine(calls: string[] = []) {
  return createLifecycle({
    status: fromCallback<AnyEventObject, NonReducibleUnknown>(() => void calls.push('status')),
    noteBoot: () => void calls.push('noteBoot'),
    sendSignal: () => void calls.push('sendSignal'),
    reconciled: () => void calls.push('reconciled'),
    rechecked: () => void calls.push('rechecked'),
    reconcileFailed: () => void calls.push('reconcileFailed'),
  });
}

describe('controller lifecycle path coverage', () => {
  it('reaches every state and takes every transition; reconciled only after a STATUS, never while stopped', () => {
    const m = machine();
    const taken = new Set<AnyTransitionDefinition>();
    const visited = new Set<string>();
    const paths = getShortestPaths(m, { events: EVENTS, serializeState: (s) => JSON.stringify(s.value) });
    let walks = 0;
    for (const path of paths) {
      const steps = path.steps.map((st) => st.event as LifecycleEvent).filter((e) => !e.type.startsWith('xstate.init'));
      for (const tail of [[], ...EVENTS.map((e) => [e])]) {
        const calls: string[] = [];
        const actor = createActor(machine(calls), {
          inspect: (ev) => {
            if (ev.type !== '@xstate.microstep') return;
            const x = ev as unknown as { _transitions: AnyTransitionDefinition[]; snapshot: { _nodes: AnyStateNode[] } };
            for (const t of x._transitions) taken.add(t);
            for (const n of x.snapshot._nodes) visited.add(n.id);
          },
        }).start();
        const walk = [...steps, ...tail];
        let asked = false;
        for (const e of walk) {
          const before = calls.length;
          actor.send(e);
          for (const c of calls.slice(before)) {
            if (c === 'status') asked = true;
            // The schedule (reconciled) runs only on the answer to a STATUS asked since the last start.
            if (c === 'reconciled') expect(asked && e.type === 'STATUS', walk.map((x) => x.type).join(' → ')).toBe(true);
          }
          if (e.type === 'STOP') asked = false;
        }
        for (const n of (actor.getSnapshot() as unknown as { _nodes: AnyStateNode[] })._nodes) visited.add(n.id);
        actor.stop();
        walks++;
      }
    }
    const nodes = getStateNodes(m.root).map((n) => n.id);
    expect(nodes.filter((id) => !visited.has(id))).toEqual([]);
    const key = (t: AnyTransitionDefinition) => `${t.source.id} --${t.eventType}${t.guard ? `[${(t.guard as { type?: string }).type ?? String(t.guard)}]` : ''}--> ${(t.target ?? []).map((s) => s.id).join(',') || '(self)'}`;
    const takenKeys = new Set([...taken].map(key));
    const all = getStateNodes(m.root).flatMap((n) => [...n.transitions.values()].flat().concat(n.always ?? [])).map(key);
    expect(all.filter((k) => !takenKeys.has(k))).toEqual([]);
    expect(walks).toBeGreaterThan(20);
  });
});

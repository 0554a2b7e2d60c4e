// Single paths through the dose machine that once led to a red error (a wrong dose neither registered nor shown), each
// walked event by event with silent MCU actors and a recording store.
import { describe, expect, it } from 'vitest';
import { createActor, type NonReducibleUnknown } from 'xstate';
import { ManualClock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { createDoseMachine, doseWindows, silentLogic, type DoseEvent, type DoseResume, type DoseStore, type MotionInput } from '../../../firmware-host/src/dosing/dose-machine.js';
import { DEFAULT_TIMING } from '../../../firmware-host/src/roll/types.js';

const profile = loadProfile('dosis-r1');
const T = Date.UTC(2027, 0, 4, 8, 0);
const dose = { doseId: 'R1-001', slot: 0, label: 'R1-001', expectedPills: 3, windows: doseWindows(T, DEFAULT_TIMING, null), reminderEveryMs: 5 * 60_000, overdue: false };

function walk(events: DoseEvent[], resume: DoseResume = { state: 'timing' }, cupUnknown = false, thenAtMs?: number) {
  const calls: string[] = [];
  const signals: string[] = [];
  const store: DoseStore = {
    startDispensing: () => (calls.push('startDispensing'), true),
    resetToScheduled: () => void calls.push('resetToScheduled'),
    markAsked: () => void calls.push('markAsked'),
    forgetAsked: () => void calls.push('forgetAsked'),
    presented: () => void calls.push('presented'),
    finish: (_id, final, o) => (calls.push(`finish:${final}:${o?.reason ?? ''}`), true),
    markOverdue: () => (calls.push('markOverdue'), true),
    recordIntent: (_d, name) => (calls.push(`intent:${name}`), name),
    completeIntent: () => void calls.push('completeIntent'),
    cupLifted: () => void calls.push('cupLifted'),
  };
  const clock = new ManualClock(T);
  const machine = createDoseMachine({
    clock, profile, store, bootId: () => 'B0000001', signal: (m) => void signals.push(m),
    motion: silentLogic<MotionInput>(), status: silentLogic<NonReducibleUnknown>(), clear: silentLogic<NonReducibleUnknown>(),
  });
  const actor = createActor(machine, { clock, input: { dose: { ...dose, cupUnknown }, resume } }).start();
  for (const e of events) actor.send(e);
  if (thenAtMs !== undefined) clock.advance(thenAtMs - clock.now());
  return { snap: actor.getSnapshot(), calls, signals };
}

const TO_RELEASE: DoseEvent[] = [
  { type: 'PRESS' },
  { type: 'STATUS', cup: true, cupHoldsDose: false, latched: false },
  { type: 'ROTATED', slot: 0, label: 'R1-001' },
];

describe('a cup lifted while the pills may be falling', () => {
  it('during the RELEASE: the dose fails (shown, stored for the centre), the cup is never presented', () => {
    const { snap, calls, signals } = walk([...TO_RELEASE, { type: 'CUP', present: false }, { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }]);
    expect(snap.value).toBe('failed');
    expect(snap.context).toMatchObject({ cls: 'yellow', reason: 'cup_lifted_during_release', countedPills: 3 });
    expect(calls).toContain('finish:failed:cup_lifted_during_release');
    expect(calls).not.toContain('presented');
    expect(signals.at(-1)).toBe('error');
  });

  it('during a SHAKE after a short release: the same', () => {
    const { snap, calls } = walk([
      ...TO_RELEASE, { type: 'RELEASED', n: 2, w: [12, 12], empty: false }, { type: 'CUP', present: false }, { type: 'SHAKEN', n: 1, w: [12], empty: true },
    ]);
    expect(snap.value).toBe('failed');
    expect(snap.context.reason).toBe('cup_lifted_during_release');
    expect(calls).not.toContain('presented');
  });

  it('no lift: the same release is presented (the guard does not fire by itself)', () => {
    const { snap, calls } = walk([...TO_RELEASE, { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }]);
    expect(snap.value).toBe('presented');
    expect(calls).toContain('presented');
  });
});

describe('a short count explained by a long pulse', () => {
  // dosis-r1: a single pill's pulse is 12 ± 1.5 ms; 18 ms is 4 sd above it, 16 ms under 3 sd (about 1 pill in 100).
  it('a pulse a slow single pill makes (16 ms) does not stand for two: a pouch packed one short is yellow, not right', () => {
    const { snap, calls } = walk([...TO_RELEASE, { type: 'RELEASED', n: 2, w: [12, 16], empty: true }]);
    expect(snap.value).toBe('failed');
    expect(snap.context).toMatchObject({ cls: 'yellow', reason: 'sensor_implausible', countedPills: 2 });
    expect(calls).not.toContain('presented');
  });

  it('a pulse only two pills together make (18 ms) does: right, the overlap resolved', () => {
    const { snap, calls } = walk([...TO_RELEASE, { type: 'RELEASED', n: 2, w: [12, 18], empty: true }]);
    expect(snap.value).toBe('presented');
    expect(snap.context).toMatchObject({ cls: 'correct', reason: 'overlap_resolved', countedPills: 3 });
    expect(calls).toContain('presented');
  });
});

describe('a cup lift the store saw while the host was away (a restart mid-dispensing)', () => {
  const right = [{ n: 3, w: [12, 12, 12], empty: true }];

  it('after the pills fell and no motion pending: failed, and the cup known empty (the next dose is not blocked)', () => {
    const { snap, calls } = walk([], { state: 'dispensing-idle', readings: right, attempts: 1 }, true);
    expect(snap.value).toBe('failed');
    expect(snap.context.reason).toBe('cup_lifted_during_release');
    expect(calls.slice(-2)).toEqual(['finish:failed:cup_lifted_during_release', 'cupLifted']);
  });

  it('during a RELEASE whose outcome the host asks for: failed, the cup may hold pills (not marked empty)', () => {
    const resume: DoseResume = { state: 'motion', name: 'RELEASE', commandId: 'RELEASE', readings: [], attempts: 1, rotations: 1, shakes: 0 };
    const { snap, calls } = walk([{ type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }], resume, true);
    expect(snap.value).toBe('failed');
    expect(snap.context.reason).toBe('cup_lifted_during_release');
    expect(calls).not.toContain('cupLifted');
  });

  it('before anything fell (nothing read yet, no motion pending): no matter, the dose is dispensed and presented', () => {
    const { snap, calls } = walk(
      [{ type: 'STATUS', cup: true, cupHoldsDose: false, latched: false }, { type: 'ROTATED', slot: 0, label: 'R1-001' }, { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }],
      { state: 'dispensing-idle', readings: [], attempts: 1 }, true,
    );
    expect(snap.value).toBe('presented');
    expect(calls).toContain('presented');
  });
});

describe('the window ends with the pills in the cup', () => {
  it('asked for, presented, never lifted: missed (left in the cup), and the light shows the error, not off', () => {
    const { snap, calls, signals } = walk([...TO_RELEASE, { type: 'RELEASED', n: 3, w: [12, 12, 12], empty: true }], { state: 'timing' }, false, dose.windows.closeAtMs + 1);
    expect(snap.value).toBe('missed');
    expect(snap.context.reason).toBe('left_in_cup');
    expect(calls.at(-1)).toBe('finish:missed:left_in_cup');
    expect(signals.at(-1)).toBe('error');
  });

  it('never asked for: missed, the light goes quiet', () => {
    const { snap, signals } = walk([], { state: 'timing' }, false, dose.windows.closeAtMs + 1);
    expect(snap.value).toBe('missed');
    expect(signals.at(-1)).toBe('off');
  });
});

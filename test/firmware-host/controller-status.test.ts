// The controller's status: the current and next dose as the screens show them, kept in step with the schedule
// without reading the store at every change of state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { SimHarness } from '../../device-sim/src/harness/sim-harness.js';
import type { ControllerStatus } from '../../firmware-host/src/controller.js';
import { citizenFor, MIN, QUICK_TIMING, scenarioRoll } from './scenarios/kit.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0);
const silent = pino({ level: 'silent' });
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function rig(dbPath?: string): { h: SimHarness; clock: ManualClock } {
  const clock = new ManualClock(T0);
  const h = new SimHarness({ seed: 5, clock, dbPath, timing: QUICK_TIMING, logger: silent }).start();
  cleanups.push(() => h.stop());
  expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
  return { h, clock };
}

const view = (s: ControllerStatus) => `${s.phase} ${s.current?.doseId ?? '-'} next ${s.next?.doseId ?? '-'}`;

describe('controller status', () => {
  it("gives the current dose's windows as its dose machine keeps them: the next dose's early time closes it", () => {
    const { h, clock } = rig();
    // Doses 4 minutes apart: the next one's early window (1 min) opens 3 minutes after this one is due, before its own close (5).
    const pouches = scenarioRoll('R1', clock.now(), [2, 3], 5 * MIN, 4 * MIN);
    h.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    h.controller.loadSchedule({ rollId: 'R1', citizenId: 'C1', pouches });
    const due = pouches[0]!.intakeAtMs;
    expect(h.controller.status().current?.windows).toEqual({ earlyAtMs: due - MIN, dueAtMs: due, overdueAtMs: due + 2 * MIN, closeAtMs: due + 3 * MIN });
  });

  it('shows each dose as current and the one after it as next, from the first dose to the end of the roll', () => {
    const { h, clock } = rig();
    const pouches = scenarioRoll('R1', clock.now(), [2, 3, 4]);
    h.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    h.controller.loadSchedule({ rollId: 'R1', citizenId: 'C1', pouches });
    expect(h.controller.status()).toMatchObject({ current: { doseId: 'R1-001', intakeAtMs: pouches[0]!.intakeAtMs, pillCount: 2 }, next: { doseId: 'R1-002', intakeAtMs: pouches[1]!.intakeAtMs } });

    const seen: string[] = [];
    h.controller.on('status', (s) => {
      if (seen.at(-1) !== view(s)) seen.push(view(s));
    });
    const citizen = citizenFor({ clock, sim: h.sim, controller: h.controller, store: h.store }).start();
    expect(h.runUntil(() => h.outcomes.length === 3, 60 * MIN)).toBe(true);
    citizen.stop();
    expect(h.outcomes.map((o) => `${o.doseId} ${o.final}`)).toEqual(['R1-001 taken', 'R1-002 taken', 'R1-003 taken']);
    // Every announced status names the dose the machine runs and the first dose after it, as the store has them.
    for (const k of [1, 2, 3]) {
      const next = k < 3 ? `R1-00${k + 1}` : '-';
      expect(seen).toContain(`presented R1-00${k} next ${next}`);
    }
    expect(seen.filter((s) => s.startsWith('dispensing R1-002')).every((s) => s.endsWith('next R1-003'))).toBe(true);
    // A dose once dispensed is never shown as next again (not even between one dose's end and the next one's start).
    for (const id of ['R1-001', 'R1-002']) {
      const started = seen.findIndex((s) => s.startsWith(`dispensing ${id}`));
      expect(started, id).toBeGreaterThan(0);
      expect(seen.slice(started).filter((s) => s.endsWith(`next ${id}`)), id).toEqual([]);
    }
    expect(h.controller.status()).toMatchObject({ current: null, next: null, lastOutcome: { doseId: 'R1-003' } });
  });

  it('follows a roll loaded here at once, while a dose waits', () => {
    const { h, clock } = rig();
    const first = scenarioRoll('R1', clock.now(), [3, 3], 60 * MIN);
    h.controller.loadSchedule({ rollId: 'R1', citizenId: 'C1', pouches: first });
    expect(h.runUntil(() => h.controller.status().phase === 'waiting', 10_000)).toBe(true);
    expect(view(h.controller.status())).toBe('waiting R1-001 next R1-002');
    const second = scenarioRoll('R2', clock.now(), [1, 2, 3], 30 * MIN);
    h.controller.loadSchedule({ rollId: 'R2', citizenId: 'C1', pouches: second });
    expect(h.controller.status()).toMatchObject({ current: { doseId: 'R2-001', pillCount: 1 }, next: { doseId: 'R2-002', intakeAtMs: second[1]!.intakeAtMs } });
    h.controller.unloadSchedule();
    expect(h.controller.status()).toMatchObject({ current: null, next: null });
  });

  it('watches a database file for other processes, and a private in-memory one not at all', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-status-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const onFile = rig(join(dir, 'robot.db'));
    const inMemory = rig();
    expect([onFile.h.store.durable, inMemory.h.store.durable]).toEqual([true, false]);
    // With nothing to do, the link's heartbeats and (on a file) the store watch and the running mark are the only timers left.
    expect(onFile.clock.pending - inMemory.clock.pending).toBe(2);
  });
});

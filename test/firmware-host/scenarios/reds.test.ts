// Would-be red errors the soak's referee found in the controller, each played alone: the real controller on the simulator
// (ManualClock, memory wire), judged on the simulator's ledger (what fell where, what the light showed).
//
// - the cup carried away while the pills fall: they land on the tray, not in the cup; the robot must not present an
//   empty cup as the dose (recorded taken: red), but fail the dose, shown and told (yellow);
// - a failed dose's error light lost when the host restarts (and the MCU with it, on a power cut): the new host shows
//   again what the store says was shown, not the MCU's power-up `off`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { createMemoryWire } from '../../../protocol/src/transport.js';
import { loadProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { bootHost } from '../../../device-sim/src/soak/host.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import type { DoseTiming, ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { MIN, scenarioRoll } from './kit.js';

const silent = pino({ level: 'silent' });
const T0 = Date.UTC(2027, 0, 4, 6, 0);
const TIMING: DoseTiming = { earlyMin: 1, reminderEveryMin: 1, overdueAfterMin: 2, closeAfterMin: 5 };
const dir = mkdtempSync(join(tmpdir(), 'dosis-reds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A host process on `file`: the robot as shipped (the soak's host), on a new cable to the simulator; `die()` abandons it where it stands. */
function bootRobot(world: ManualClock, file: string, sim: DeviceSimulator, profile: HardwareProfile) {
  const h = bootHost({
    world, profile, dbPath: file, timing: TIMING, logger: silent, firstCommandNumber: 0, alarm: null,
    open: (clock) => {
      const [near, far] = createMemoryWire(clock, { baudRate: profile.baudRate });
      sim.attach(far);
      return near;
    },
  });
  expect(world.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
  return { clock: h.clock, store: h.store, controller: h.controller, die: () => h.clock.die() };
}

function world(seed: number, file = ':memory:') {
  const clock = new ManualClock(T0);
  const profile = loadProfile('dosis-r1');
  const sim = new DeviceSimulator({ clock, profile, seed, logger: silent });
  return { clock, profile, sim, host: bootRobot(clock, file, sim, profile) };
}

type World = ReturnType<typeof world>;

/** Loads a roll of `pills` (the first dose 2 minutes ahead, then every `spacingMs`) into the MCU and the robot. */
function loadRoll(w: World, rollId: string, pills: readonly number[], spacingMs?: number): ScheduledPouch[] {
  const pouches = scenarioRoll(rollId, w.clock.now(), pills, 2 * MIN, spacingMs);
  w.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
  w.host.controller.loadSchedule({ rollId, citizenId: 'C1', pouches });
  return pouches;
}

/** Runs the world until the robot reminds of the first dose. */
const untilDue = (w: World) => w.clock.runUntil(() => w.host.controller.status().phase === 'due', 10 * MIN);

const alarmsOf = (store: Store, doseId: string) =>
  (store.db.prepare('SELECT type FROM outbox WHERE dose_id = ? ORDER BY type').all(doseId) as { type: string }[]).map((r) => r.type);

describe('the cup carried away while the pills fall', () => {
  for (const [what, backAfterMs] of [['and put back before the robot is done', 1000], ['and put back only later', 30_000]] as const) {
    it(`${what}: a failure shown and told (yellow), never an empty cup recorded taken`, () => {
      const w = world(31);
      const { clock, sim } = w;
      const { store, controller } = w.host;
      loadRoll(w, 'C', [4]);
      untilDue(w);
      sim.pressButton();
      // The MCU has taken the RELEASE (the cup was there): the citizen lifts the (empty) cup before the cut, and puts it
      // back a little later.
      expect(clock.runUntil(() => sim.ledger.motions.some((m) => m.name === 'RELEASE'), 60_000)).toBe(true);
      sim.takeCup('citizen');
      clock.advance(backAfterMs);
      sim.placeCup();
      // Whatever the robot shows next, the citizen lifts the cup once more when it asks for it.
      clock.runUntil(() => sim.status().signal === 'present' || store.dose('C-001')!.finalAtMs !== null, 60_000);
      if (sim.status().signal === 'present') sim.takeCup('citizen');
      clock.runUntil(() => store.dose('C-001')!.finalAtMs !== null, 30 * MIN);
      // What the robot shows at the end takes a moment to reach the MCU.
      clock.advance(5000);
      // Ground truth: the pills fell while the cup was away, and the citizen never lifted any.
      const fell = sim.ledger.entries.filter((e) => e.pillsFell > 0);
      expect(fell.length).toBeGreaterThan(0);
      expect(fell.every((e) => !e.cupPresent)).toBe(true);
      expect(sim.ledger.takes.reduce((n, t) => n + t.pills, 0)).toBe(0);
      // The robot's word: failed (yellow), shown on the light, told to the centre.
      expect(store.dose('C-001')).toMatchObject({ state: 'failed', cls: 'yellow', reason: 'cup_lifted_during_release' });
      expect(sim.ledger.signals.some((s) => s.mode === 'error')).toBe(true);
      expect(alarmsOf(store, 'C-001')).toContain('dose_failed');
    });
  }
});

describe('the error light across a restart', () => {
  for (const powerCut of [false, true]) {
    it(`a failed dose's error light is shown again after a host ${powerCut ? 'power cut (MCU too)' : 'crash'}`, () => {
      const file = join(dir, `light-${powerCut ? 'cut' : 'crash'}.db`);
      const w = world(32, file);
      const { clock, sim, profile } = w;
      loadRoll(w, 'L', [3, 2], 60 * MIN);
      // Every rotation jams: the dose fails (yellow jam), and the light says so.
      sim.setFault('jam', 1);
      untilDue(w);
      sim.pressButton();
      expect(clock.runUntil(() => w.host.store.dose('L-001')!.finalAtMs !== null, 10 * MIN)).toBe(true);
      sim.setFault('jam', 0);
      expect(w.host.store.dose('L-001')).toMatchObject({ state: 'failed', cls: 'yellow' });
      clock.advance(5000);
      expect(sim.status().signal).toBe('error');
      // The host dies (with the MCU on a power cut: its light is off after power-up) and boots again on its file.
      w.host.die();
      if (powerCut) sim.powerCycle();
      clock.advance(3000);
      const again = bootRobot(clock, file, sim, profile);
      clock.advance(5000);
      // The next dose is not due for an hour: nothing has asked for the citizen since the failure.
      expect(again.controller.status().phase).toBe('waiting');
      expect(sim.status().signal).toBe('error');
      expect(sim.ledger.signalAt(clock.now())).toBe('error');
    });
  }
});

describe('the error light and the next dose', () => {
  it('a failure whose error light the MCU missed (silent as the dose failed) is shown before the next dose reminds, and for a while', () => {
    const w = world(34);
    const { clock, sim } = w;
    const { store, controller } = w.host;
    // The second dose is due 2 minutes after the first: the first closes as the second's early window opens.
    const pouches = loadRoll(w, 'N', [3, 2], 2 * MIN);
    sim.setFault('jam', 1);
    untilDue(w);
    clock.advance(40_000);
    // The dose fails (every rotation jams); the MCU falls silent as it does, past the second dose's due time.
    let failedAtMs = 0;
    controller.on('outcome', (o) => {
      if (o.doseId !== 'N-001') return;
      failedAtMs = clock.now();
      sim.setFault('jam', 0);
      sim.setFault('notAnswering', 1);
    });
    sim.pressButton();
    expect(clock.runUntil(() => failedAtMs > 0, 60_000)).toBe(true);
    expect(store.dose('N-001')).toMatchObject({ state: 'failed', cls: 'yellow', reason: 'jam' });
    const dueAtMs = pouches[1]!.intakeAtMs;
    clock.advance(dueAtMs + 10_000 - clock.now());
    expect(controller.status().phase).toBe('due');
    sim.setFault('notAnswering', 0);
    clock.advance(30_000);
    // The light the citizen saw: the error first, then (a minute on) the next dose's reminder.
    const shown = sim.ledger.signals.filter((s) => s.atMs > failedAtMs);
    expect(shown.map((s) => s.mode)).toEqual(['error']);
    clock.advance(2 * MIN);
    const later = sim.ledger.signals.filter((s) => s.atMs > failedAtMs);
    expect(later.map((s) => s.mode)).toEqual(['error', 'remind']);
    expect(later[1]!.atMs - later[0]!.atMs).toBeGreaterThanOrEqual(60_000);
  });
});

describe('pills left in the cup as the window ends', () => {
  it('asked for and presented, not lifted by the close: missed (left in the cup), told, and the light shows the error', () => {
    const w = world(35);
    const { clock, sim } = w;
    const { store, controller } = w.host;
    loadRoll(w, 'M', [3]);
    untilDue(w);
    sim.pressButton();
    expect(clock.runUntil(() => sim.status().signal === 'present', 60_000)).toBe(true);
    expect(clock.runUntil(() => store.dose('M-001')!.finalAtMs !== null, 30 * MIN)).toBe(true);
    clock.advance(5000);
    expect(store.dose('M-001')).toMatchObject({ state: 'missed', reason: 'left_in_cup' });
    expect(alarmsOf(store, 'M-001')).toContain('missed_dose');
    expect(sim.status().pillsInCup).toBe(3);
    expect(sim.status().signal).toBe('error');
  });
});

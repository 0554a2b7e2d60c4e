// A scenario over a real pseudo-terminal: the robot as `dosis host` runs it (startRobot, serialport, a store file, the wall clock)
// against the simulator on the other end of a socat pty pair, with fast mechanics (fixtures/dosis-r1-quick.json).
//
//   roll A, one pouch of 3 pills, no fault           → taken, correct
//   pillStuck on
//   roll B, one pouch of 4 pills                     → shaken free, taken, green
// The referee checks each roll against the simulator's ledger.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock, type Clock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { createPtyPair, keepSerialAttached } from '../../../device-sim/src/pty.js';
import { startRobot } from '../../../firmware-host/src/robot.js';
import { SerialTransport } from '../../../hardware/src/serial-transport.js';
import type { DosingOutcome } from '../../../firmware-host/src/controller.js';
import { citizenFor, referee, scenarioRoll } from './kit.js';

export const QUICK_PROFILE = fileURLToPath(new URL('./fixtures/dosis-r1-quick.json', import.meta.url));
const silent = pino({ level: 'silent' });
/** Wall-clock windows for a dose due in a moment (minutes, as the roll gives them). */
const WALL_TIMING = { earlyMin: 0.5, reminderEveryMin: 1, overdueAfterMin: 1, closeAfterMin: 2 };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function until(clock: Clock, pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = clock.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) resolve();
      else if (clock.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else clock.setTimeout(tick, 10);
    };
    tick();
  });
}

describe('scenario over a real pseudo-terminal', () => {
  it('a correct dose, then a dose with a stuck pill (green), through serialport and the store file; each empty roll reported', async () => {
    const clock = new SystemClock();
    const profile = loadProfile(QUICK_PROFILE);
    const dir = mkdtempSync(join(tmpdir(), 'dosis-pty-scenario-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pair = await createPtyPair({ clock });
    cleanups.push(() => pair.close());
    const sim = new DeviceSimulator({ clock, profile, seed: 9, logger: silent });
    const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(t), clock, retryMs: 50 });
    cleanups.push(() => sim.stop(), detach);
    const robot = await startRobot({
      clock, profile, logger: silent, open: () => SerialTransport.open(pair.hostPath, profile.baudRate), store: { path: join(dir, 'robot.db') }, alarm: null, screens: null,
    });
    cleanups.push(() => robot.close());
    const outcomes: DosingOutcome[] = [];
    robot.controller.on('outcome', (o) => outcomes.push(o));
    await until(clock, () => robot.controller.status().reconciled, 10_000, 'the controller to reconcile with the MCU');
    expect(robot.link.hello?.hw).toBe('dosis-r1-quick');

    // Wall-clock windows of a couple of minutes: the citizen presses as the dose falls due and looks at the robot often.
    const citizen = citizenFor({
      clock, sim, controller: robot.controller, store: robot.store, pollMs: 20, habits: { placeBackMs: 100 }, citizen: { lookEveryMs: 20, pressAgainMs: 500 },
    }).start();
    cleanups.push(() => citizen.stop());
    const dispense = async (rollId: string, pills: number) => {
      const pouches = scenarioRoll(rollId, clock.now(), [pills], 0).map((p) => ({ ...p, intakeAtMs: clock.now() + 300, timing: WALL_TIMING }));
      sim.ledger.clear();
      sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
      robot.controller.loadSchedule({ rollId, citizenId: 'C1', pouches }, 'anna');
      const before = outcomes.length;
      await until(clock, () => outcomes.length > before, 15_000, `the dose of roll ${rollId} to end`);
      const report = referee(robot.store, sim.ledger, { rollIds: [rollId] });
      expect(report.violations).toEqual([]);
      expect(report.verdicts.filter((v) => v.red)).toEqual([]);
      return { outcome: outcomes.at(-1)!, report };
    };

    const a = await dispense('A', 3);
    expect(a.outcome).toMatchObject({ doseId: 'A-001', final: 'taken', cls: 'correct', countedPills: 3, attempts: 1 });
    expect(a.report.releases).toBe(1);
    expect(sim.ledger.takes.map((t) => t.pills)).toEqual([3]);

    sim.setFault('pillStuck', 1);
    const b = await dispense('B', 4);
    expect(b.outcome).toMatchObject({ doseId: 'B-001', final: 'taken', cls: 'green', countedPills: 4, attempts: 2 });
    expect(sim.ledger.entries.map((e) => [e.action, e.pillsFell])).toEqual([['release', 3], ['shake', 1]]);
    expect(sim.ledger.takes.map((t) => t.pills)).toEqual([4]);
    expect(robot.link.stats.framesIn).toBeGreaterThan(10);
    // Each one-pouch roll ran out with its dose: the robot's low-supply watch told the alarm centre once per roll.
    const low = robot.store.db.prepare("SELECT event_id FROM outbox WHERE type = 'low_supply' ORDER BY seq").all() as { event_id: string }[];
    expect(low.map((r) => r.event_id.split(':low_supply:')[0])).toEqual(['A', 'B']);
  });
});

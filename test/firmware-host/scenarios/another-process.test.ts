// Another process on the robot's database file: `dosis roll unload/load` while the controller runs.
//
// Script 1: the citizen presses, the controller asks the MCU for STATUS, and
// before the answer the roll is unloaded by `dosis roll unload` (a real child
// process, while the ManualClock stands still). The claim in the store
// (scheduled → dispensing) must fail and nothing may move.
// Script 2: a roll loaded by another connection is picked up within a few
// seconds (PRAGMA data_version), not at the next dose of the old roll.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { SimHarness } from '../../../device-sim/src/harness/sim-harness.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { DB_WATCH_MS } from '../../../firmware-host/src/controller.js';
import { migratePins, setPin } from '../../../firmware-host/src/screens/pin.js';
import { citizenFor, DOSE_SPACING_MS, MIN, QUICK_TIMING, referee, scenarioRoll } from './kit.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const T0 = Date.UTC(2027, 0, 4, 6, 0);
const silent = pino({ level: 'silent' });

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function rig(): { h: SimHarness; clock: ManualClock; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-other-'));
  const file = join(dir, 'robot.db');
  const clock = new ManualClock(T0);
  const h = new SimHarness({ seed: 17, clock, dbPath: file, timing: QUICK_TIMING, logger: silent }).start();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => h.stop());
  expect(h.runUntil(() => h.controller.status().reconciled, 60_000)).toBe(true);
  return { h, clock, file };
}

describe('a roll unloaded by another process', () => {
  it('between the button and the claim: the dose is not started and nothing moves', () => {
    const { h, clock, file } = rig();
    migratePins(h.store.db);
    setPin(h.store.db, 'anna', '4711', clock.now());
    h.loadRoll([3, 4, 2].map((pills, i) => ({ intakeAtMs: T0 + 2 * MIN + i * DOSE_SPACING_MS, pills })));
    const citizen = citizenFor({ clock, sim: h.sim, controller: h.controller, store: h.store }).start();
    // Dose 1 as usual, so the carousel stands at slot 0 and a turn to dose 2's slot would show.
    expect(h.runUntil(() => h.outcomes.length === 1, 10 * MIN)).toBe(true);
    expect(h.outcomes[0]).toMatchObject({ doseId: 'R1-001', final: 'taken', cls: 'correct' });
    citizen.stop();
    expect(h.runUntil(() => h.controller.status().phase === 'due', 10 * MIN)).toBe(true);
    expect(h.controller.status().current?.doseId).toBe('R1-002');

    h.sim.pressButton();
    expect(h.runUntil(() => h.controller.status().step === 'checking', 5000)).toBe(true);
    // The STATUS is on the wire; the clock stands still while the other process unloads the roll.
    const r = spawnSync(process.execPath, ['bin/dosis.js', 'roll', 'unload', '--db', file, '--staff', 'anna', '--pin-stdin'], { cwd: ROOT, input: '4711\n', encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/roll R1 unloaded by anna: 2 pouches came back/);

    expect(h.runUntil(() => h.controller.status().phase === 'idle', 60_000)).toBe(true);
    expect(h.store.dose('R1-002')).toMatchObject({ state: 'returned' });
    expect(h.store.intents('R1-002')).toEqual([]);
    expect(h.store.recentEvents(50).some((e) => e.type === 'dispense_not_started' && e.doseId === 'R1-002')).toBe(true);
    // Physically: one pouch cut (dose 1's), the carousel never left slot 0, the light is off.
    expect(h.sim.ledger.entries.map((e) => e.label)).toEqual(['R1-001']);
    expect(h.sim.status()).toMatchObject({ indexSlot: 0, physicalSlot: 0, signal: 'off' });
    expect(h.outcomes.map((o) => o.doseId)).toEqual(['R1-001']);
    const report = referee(h.store, h.sim.ledger);
    expect(report.violations).toEqual([]);
  });

  it('the same race through the controller in this process (the pharmacy screen) stops the dose too', () => {
    const { h } = rig();
    h.loadRoll([3, 2].map((pills, i) => ({ intakeAtMs: T0 + 2 * MIN + i * DOSE_SPACING_MS, pills })));
    expect(h.runUntil(() => h.controller.status().phase === 'due', 10 * MIN)).toBe(true);
    h.controller.pressButton();
    expect(h.controller.status().step).toBe('checking');
    expect(h.controller.unloadSchedule('anna').map((d) => d.doseId)).toEqual(['R1-001', 'R1-002']);
    expect(h.runUntil(() => h.controller.status().phase === 'idle', 60_000)).toBe(true);
    expect(h.store.allDoses().map((d) => d.state)).toEqual(['returned', 'returned']);
    expect(h.store.intents('R1-001')).toEqual([]);
    expect(h.sim.ledger.entries).toEqual([]);
  });
});

describe('a roll loaded by another process', () => {
  it('is picked up within a few seconds, not at the old roll\'s next dose', () => {
    const { h, clock, file } = rig();
    // Roll 1 is far off: its first dose would open in 3 hours.
    h.loadRoll([3, 3].map((pills, i) => ({ intakeAtMs: T0 + 3 * 60 * MIN + i * DOSE_SPACING_MS, pills })));
    expect(h.runUntil(() => h.controller.status().phase === 'waiting', 10_000)).toBe(true);
    expect(h.controller.status().current?.doseId).toBe('R1-001');

    // The pharmacy loads roll 2 on the robot and through another connection to the file.
    const other = Store.open(file, { clock, timing: QUICK_TIMING });
    cleanups.push(() => other.close());
    const pouches = scenarioRoll('R2', clock.now(), [4, 2, 3]);
    h.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    expect(other.loadRoll({ rollId: 'R2', citizenId: 'C1', pouches }, 'anna').map((d) => d.doseId)).toEqual(['R1-001', 'R1-002']);

    clock.advance(DB_WATCH_MS + 10);
    expect(h.controller.status().current?.doseId).toBe('R2-001');

    // An unrelated commit by the other process leaves the running dose alone; the roll is dispensed as usual.
    const citizen = citizenFor({ clock, sim: h.sim, controller: h.controller, store: h.store }).start();
    expect(h.runUntil(() => h.controller.status().phase === 'dispensing', 10 * MIN)).toBe(true);
    other.log('pharmacy_note', null, { note: 'checked' });
    expect(h.runUntil(() => h.store.openDoses().length === 0, 30 * MIN)).toBe(true);
    citizen.stop();
    expect(h.outcomes.map((o) => `${o.doseId} ${o.final} ${o.cls}`)).toEqual(['R2-001 taken correct', 'R2-002 taken correct', 'R2-003 taken correct']);
    expect(h.store.allDoses().filter((d) => d.rollId === 'R1').map((d) => d.state)).toEqual(['returned', 'returned']);
    expect(referee(h.store, h.sim.ledger).violations).toEqual([]);
  });
});

// Low supply: a low_supply outbox event once a day per roll while fewer than 3 days of pouches are left, stopped by a new roll.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../protocol/src/clock.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { SupplyWatch, supplyState } from '../../../firmware-host/src/supply.js';
import { pouchLabel, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';

const T0 = Date.UTC(2027, 0, 4, 6, 0); // 07:00 in Copenhagen
const H = 3_600_000;
const silent = pino({ level: 'silent' });

function pouches(rollId: string, startMs: number, n: number, everyH: number): ScheduledPouch[] {
  return Array.from({ length: n }, (_, i) => ({
    rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: startMs + i * everyH * H, pillCount: 2,
  }));
}

const lowSupplyEvents = (store: Store) =>
  store.db.prepare(`SELECT event_id, payload_json FROM outbox WHERE type = 'low_supply' ORDER BY seq`).all() as { event_id: string; payload_json: string }[];

describe('SupplyWatch', () => {
  let store: Store | undefined;
  let watch: SupplyWatch | undefined;
  afterEach(() => {
    watch?.stop();
    store?.close();
  });

  it('enqueues low_supply once per roll and day, repeats it daily, and stops at a new roll', () => {
    const clock = new ManualClock(T0);
    store = Store.open(':memory:', { clock });
    // 4 days of pouches, every 12 h: not low yet.
    store.loadRoll({ rollId: 'R1', citizenId: 'C1', pouches: pouches('R1', T0 + H, 8, 12) }, 'anna');
    watch = new SupplyWatch({ store, clock, logger: silent });
    watch.start();
    expect(lowSupplyEvents(store)).toHaveLength(0);

    // The last pouch is at T0 + 85 h: 14 h later fewer than 3 days are left (21:00 local time).
    clock.advance(13 * H);
    expect(lowSupplyEvents(store)).toHaveLength(0);
    clock.advance(1 * H);
    const first = lowSupplyEvents(store);
    expect(first).toHaveLength(1);
    expect(first[0]!.event_id).toBe('R1:low_supply:2027-01-04');
    expect(JSON.parse(first[0]!.payload_json)).toMatchObject({ rollId: 'R1' });
    const logged = store.recentEvents(100).filter((e) => e.type === 'low_supply').length;

    // More checks the same day add nothing, not even to the event log.
    watch.check();
    clock.advance(2 * H);
    expect(lowSupplyEvents(store)).toHaveLength(1);
    expect(store.recentEvents(100).filter((e) => e.type === 'low_supply')).toHaveLength(logged);

    // The next day: one more.
    clock.advanceTo(Date.UTC(2027, 0, 5, 12, 0));
    expect(lowSupplyEvents(store).map((e) => e.event_id)).toEqual(['R1:low_supply:2027-01-04', 'R1:low_supply:2027-01-05']);

    // A new roll of 7 days: no more.
    store.loadRoll({ rollId: 'R2', citizenId: 'C1', pouches: pouches('R2', clock.now() + H, 14, 12) }, 'anna');
    clock.advance(24 * H);
    expect(lowSupplyEvents(store)).toHaveLength(2);
    expect(supplyState(store, clock.now())?.rollId).toBe('R2');
  });

  it('counts days to the last pouch left; a used-up roll has 0', () => {
    const clock = new ManualClock(T0);
    store = Store.open(':memory:', { clock });
    expect(supplyState(store, T0)).toBeUndefined();
    store.loadRoll({ rollId: 'R1', citizenId: 'C1', pouches: pouches('R1', T0 + H, 3, 24) }, null);
    expect(supplyState(store, T0)).toMatchObject({ pouchesLeft: 3, daysLeft: (49 * H) / (24 * H) });
    store.unloadRoll(null);
    expect(supplyState(store, T0)).toBeUndefined();
  });
});

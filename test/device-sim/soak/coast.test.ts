// The soak's two modes: exact (every wire line played) and coalesced (idle heartbeats skipped in virtual time).
// Exact mode is the run with the optimisation off; coalesced mode gives the same figures where no draw of chance
// tells them apart (a fault-free wire), and figures no different beyond chance where the wire has faults.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runEpisode, type DosingVerdict } from '../../../device-sim/src/soak/episode.js';
import { CoastingClock } from '../../../device-sim/src/soak/coast.js';
import { planEpisodes, runSoak } from '../../../device-sim/src/soak/runner.js';
import { loadSoakProfile, type SoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { buildReport, compareReports, type SoakTally } from '../../../device-sim/src/soak/report.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import { Controller } from '../../../firmware-host/src/controller.js';
import { PowerMark } from '../../../firmware-host/src/power.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { ManualClock } from '../../../protocol/src/clock.js';
import pino from 'pino';

/** Every CoastingClock an episode builds, to read how many heartbeat rounds it skipped. */
function coastingClocks(): CoastingClock[] {
  const clocks: CoastingClock[] = [];
  const coastOver = CoastingClock.prototype.coastOver;
  vi.spyOn(CoastingClock.prototype, 'coastOver').mockImplementation(function (this: CoastingClock, parts) {
    clocks.push(this);
    coastOver.call(this, parts);
  });
  return clocks;
}

async function run(profile: SoakProfile, dosings: number, seed: number, coalesce: boolean, onDosing?: (d: DosingVerdict) => void, links?: DeviceLink[]): Promise<SoakTally> {
  return runEpisode({ index: 0, seed, firstDosing: 0, dosings }, profile, 'memory', { coalesce, onDosing, wrap: links && ((_c, h) => void links.push(h.link)) });
}

/** Lines the wire corrupted, as the host saw them: MCU lines it rejected, and naks for its own lines the MCU rejected. */
const corrupted = (links: DeviceLink[]) =>
  links.reduce((n, l) => n + l.stats.naksIn + Object.values(l.stats.rejected).reduce((m, x) => m + (x ?? 0), 0), 0);

const report = (t: SoakTally, seed: number) =>
  buildReport(t, { seed, profile: 'test', transport: 'memory', workers: 1, wallSeconds: 1, interrupted: false });

afterEach(() => vi.restoreAllMocks());

describe('soak modes', () => {
  it('exact mode is the run without the optimisation: the runner\'s exact run equals an episode run with none of it', async () => {
    const profile = loadSoakProfile('reference');
    const clocks = coastingClocks();
    const episodes = planEpisodes(21, 150);
    const exact = await runSoak({ episodes, profile, transport: 'memory', workers: 1, coalesce: false, runEpisode });
    // The episode's own default: a plain ManualClock, per-line fault coins, no coasting hooks.
    const plain = await runEpisode(episodes[0]!, profile, 'memory');
    expect(clocks).toEqual([]);
    expect(JSON.stringify(exact.tally)).toBe(JSON.stringify(plain));
    // The coalesced run of the same seed did skip heartbeats (the mode switch is not a no-op).
    await runSoak({ episodes, profile, transport: 'memory', workers: 1, coalesce: true, runEpisode });
    expect(clocks).toHaveLength(1);
    expect(clocks[0]!.coastedRounds).toBeGreaterThan(100 * 150);
  }, 120_000);

  it('on a fault-free wire, coalesced mode gives the exact run\'s figures dose by dose, with most heartbeats skipped', async () => {
    // Forgotten doses too: the robot waits two hours for them, the longest idle stretches of a soak.
    const base = loadSoakProfile('none');
    const profile: SoakProfile = { ...base, name: 'test', citizen: { ...base.citizen, forgetRate: 0.05, cupAwayRate: 0.05, earlyPressRate: 0.2 } };
    const clocks = coastingClocks();
    const a: string[] = [];
    const b: string[] = [];
    const exact = await run(profile, 250, 5, false, (d) => a.push(JSON.stringify(d)));
    const coalesced = await run(profile, 250, 5, true, (d) => b.push(JSON.stringify(d)));
    expect(clocks).toHaveLength(1);
    expect(clocks[0]!.coastedRounds).toBeGreaterThan(100 * 250);
    expect(exact.missed).toBeGreaterThan(0);
    expect(b).toEqual(a);
    expect(JSON.stringify(coalesced)).toBe(JSON.stringify(exact));
  }, 120_000);

  it('with byte corruption alone on the wire (drawn as gaps between flipped bytes in both modes), coalesced mode is exact', async () => {
    // The skipped rounds use up the clean bytes their lines would have (each seq's own length), so every flipped
    // byte falls on the same line as in the exact run, and the whole run follows.
    const base = loadSoakProfile('none');
    const profile: SoakProfile = { ...base, name: 'test', faults: { corruptByte: 1e-3 }, citizen: { ...base.citizen, forgetRate: 0.05 } };
    const exactLinks: DeviceLink[] = [];
    const coalescedLinks: DeviceLink[] = [];
    const exact = await run(profile, 150, 13, false, undefined, exactLinks);
    const coalesced = await run(profile, 150, 13, true, undefined, coalescedLinks);
    expect(corrupted(exactLinks)).toBeGreaterThan(500);
    expect(coalescedLinks.map((l) => l.stats)).toEqual(exactLinks.map((l) => l.stats));
    expect(JSON.stringify(coalesced)).toBe(JSON.stringify(exact));
  }, 120_000);

  it('with wire faults, coalesced figures do not differ from exact ones beyond chance (the --compare test)', async () => {
    // Wire faults a hundred times the reference's, so that skipped rounds would show if they hid faults.
    const base = loadSoakProfile('reference');
    const profile: SoakProfile = { ...base, name: 'test', faults: { ...base.faults, corruptByte: 1e-4, dropLine: 1e-3, duplicateLine: 1e-3, notAnswering: 1e-4 } };
    const exactLinks: DeviceLink[] = [];
    const coalescedLinks: DeviceLink[] = [];
    const exact = await run(profile, 1500, 9, false, undefined, exactLinks);
    const coalesced = await run(profile, 1500, 9, true, undefined, coalescedLinks);
    const c = compareReports(report(exact, 9), report(coalesced, 9));
    // Red dosings and invariant violations count too: one run having some and the other none is a difference.
    expect(c.differ, c.summary).toBe(false);
    // The skipped heartbeats hid no fault: as many corrupted lines reached the link (some hundreds; a mode that let
    // idle heartbeats pass clean would show about a tenth as many), within four standard deviations of a Poisson count.
    const [a, b] = [corrupted(exactLinks), corrupted(coalescedLinks)];
    expect(a).toBeGreaterThan(200);
    expect(Math.abs(a - b)).toBeLessThan(4 * Math.sqrt(a + b));
    // Not the same run: the faults fell elsewhere (the draws are made in another order), so the test can tell.
    expect(JSON.stringify(coalesced)).not.toBe(JSON.stringify(exact));
  }, 300_000);
});

describe('soak modes with the store on a file', () => {
  it('the host\'s store watch is skipped with the heartbeats, and a fault-free wire still gives the exact run\'s figures', async () => {
    // Host crashes put the store on a file, so the controller watches it for other processes' commits every few
    // seconds; in the soak nothing else commits, so each look finds nothing and coalesced mode skips it.
    const base = loadSoakProfile('none');
    const profile: SoakProfile = { ...base, name: 'test', host: { crashRate: 0.03, powerCutRate: 0.02 }, citizen: { ...base.citizen, forgetRate: 0.05 } };
    const coastWatch = vi.spyOn(Controller.prototype, 'coastWatch');
    const coastRefresh = vi.spyOn(PowerMark.prototype, 'coastRefresh');
    const clocks = coastingClocks();
    const a: string[] = [];
    const b: string[] = [];
    const exact = await run(profile, 200, 7, false, (d) => a.push(JSON.stringify(d)));
    expect(coastWatch).not.toHaveBeenCalled();
    expect(coastRefresh).not.toHaveBeenCalled();
    const coalesced = await run(profile, 200, 7, true, (d) => b.push(JSON.stringify(d)));
    expect(exact.world.hostCrashes + exact.world.powerCuts).toBeGreaterThan(4);
    expect(coastWatch.mock.calls.length).toBeGreaterThan(200);
    // Skipped stretches reach past many looks (a look every 3 s would cap each at two heartbeat rounds).
    const looks = coastWatch.mock.calls.reduce((n, [k]) => n + k, 0);
    expect(looks).toBeGreaterThan(100 * 200);
    expect(clocks[0]!.coastedRounds).toBeGreaterThan(2.5 * looks);
    // The running mark's refreshes (every 30 s) are skipped too: many stretches reach past one.
    expect(coastRefresh.mock.calls.reduce((n, [k]) => n + k, 0)).toBeGreaterThan(looks / 20);
    expect(b).toEqual(a);
    expect(JSON.stringify(coalesced)).toBe(JSON.stringify(exact));
  }, 120_000);
});

describe('the running mark skipped in virtual time', () => {
  it('holds what its last skipped refresh would have written, and refreshes next when the timer would have', () => {
    const marks = [0, 1].map(() => {
      const clock = new ManualClock(1_000);
      const store = Store.open(':memory:', { clock, firstCommandNumber: 1 });
      const mark = new PowerMark({ store, clock, logger: pino({ level: 'silent' }), everyMs: 30_000 });
      mark.start();
      clock.advance(12_345);
      return { clock, store, mark };
    });
    const [played, skipped] = marks as [(typeof marks)[0], (typeof marks)[0]];
    const t = skipped.mark.idleRefresh(Infinity)!;
    expect(t.atMs).toBe(31_000);
    expect(skipped.mark.idleRefresh(t.atMs)).toBeUndefined();
    skipped.mark.coastRefresh(4);
    played.clock.advanceTo(31_000 + 3 * 30_000);
    expect(skipped.store.getMeta('alive_at_ms')).toBe(String(31_000 + 3 * 30_000));
    expect(skipped.store.getMeta('alive_at_ms')).toBe(played.store.getMeta('alive_at_ms'));
    for (const m of marks) m.clock.advanceTo(31_000 + 4 * 30_000 - 1);
    expect(skipped.store.getMeta('alive_at_ms')).toBe(played.store.getMeta('alive_at_ms'));
    for (const m of marks) m.clock.advanceTo(31_000 + 4 * 30_000);
    expect(skipped.store.getMeta('alive_at_ms')).toBe(String(31_000 + 4 * 30_000));
    expect(played.store.getMeta('alive_at_ms')).toBe(String(31_000 + 4 * 30_000));
  });
});

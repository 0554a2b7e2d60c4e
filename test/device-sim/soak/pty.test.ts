// The soak on real pseudo-terminals, as a robot's host and MCU meet it: host crashes and power cuts (the store file
// reopened, the serial port closed and opened again by the next host), the robot's own delivery loop against the real
// alarm centre over a faulty network. Judged from ground truth; a planted bug in what the robot sends is caught at the
// centre.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runEpisode, type DosingVerdict } from '../../../device-sim/src/soak/episode.js';
import { loadSoakProfile, type SoakProfile } from '../../../device-sim/src/soak/soak-profile.js';
import { FINAL_ALARMS } from '../../../device-sim/src/soak/referee.js';
import { buildReport, failures } from '../../../device-sim/src/soak/report.js';

const none = loadSoakProfile('none');

/** Crashes, power cuts and every network fault far above harsh, with failed and missed doses so alarms must reach the centre. */
const profile: SoakProfile = {
  ...none,
  name: 'pty-crashes',
  faults: { pillsStuckForGood: 0.25 },
  // A third of the doses pressed for only once overdue: the centre hears of those too (more requests to fail).
  citizen: { ...none.citizen, forgetRate: 0.1, pressDelayMin: { min: 0, max: 45 } },
  host: { crashRate: 0.15, powerCutRate: 0.1 },
  network: { lostRequestRate: 0.1, lostResponseRate: 0.1, serverErrorRate: 0.1, timeoutRate: 0.05, centreRestartRate: 0.5 },
};

const DOSINGS = 48;

function run(p: SoakProfile, opts: Parameters<typeof runEpisode>[3] = {}) {
  return runEpisode({ index: 0, seed: 14, firstDosing: 0, dosings: DOSINGS }, p, 'pty', opts);
}

const finals = (alarms: readonly string[] | undefined) => (alarms ?? []).filter((a) => (FINAL_ALARMS as readonly string[]).includes(a));

describe.skipIf(spawnSync('socat', ['-V'], { stdio: 'ignore' }).status !== 0)('soak over real ptys with crashes and the real alarm centre', () => {
  it('host crashes, power cuts, a faulty network: every alarm at the centre exactly once, nothing red', async () => {
    const verdicts: DosingVerdict[] = [];
    const t = await run(profile, { onDosing: (d) => verdicts.push(d) });
    const report = buildReport(t, { seed: 14, profile: profile.name, transport: 'pty', workers: 1, wallSeconds: 1, interrupted: false });
    expect(failures(report), JSON.stringify({ red: t.redReasons, v: t.invariantViolations.slice(0, 3) })).toEqual([]);
    expect(t.dosings).toBe(DOSINGS);
    // The world did what the profile drew: hosts died both ways, the network failed every way, the centre restarted.
    expect(t.world.hostCrashes).toBeGreaterThan(0);
    expect(t.world.powerCuts).toBeGreaterThan(0);
    const net = t.world.network;
    for (const k of ['lostRequests', 'lostResponses', 'serverErrors', 'restarts']) expect(net[k], `${k}: ${JSON.stringify(net)}`).toBeGreaterThan(0);
    // What the centre holds, dose by dose: one final alarm for each failed or missed dose, none for a dose taken.
    const alarmed = verdicts.filter((v) => v.soakClass === 'yellow' || v.soakClass === 'missed');
    expect(alarmed.some((v) => v.soakClass === 'yellow')).toBe(true);
    expect(alarmed.some((v) => v.soakClass === 'missed')).toBe(true);
    for (const v of verdicts) {
      const want = v.soakClass === 'yellow' || v.soakClass === 'missed' ? 1 : 0;
      expect(finals(v.alarms), `${v.doseId} (${v.soakClass} ${v.reason}): ${JSON.stringify(v.alarms)}`).toHaveLength(want);
    }
  }, 60_000);

  it('a planted bug: the delivery loop never sends a dose_failed (its batch answered as if the centre took it); only the centre can tell', async () => {
    // The robot's side of the network in a test build: a batch holding a dose_failed is never sent, and the loop marks
    // it delivered. The robot's own outbox still lists the event (what the pty used to judge by): the centre has none.
    // Nobody forgets a dose here: a forgotten dose costs its whole window (18 s of wall time).
    const t = await run({ ...profile, citizen: { ...profile.citizen, forgetRate: 0 } }, {
      wrapFetch: (f) => (input, init) => typeof init?.body === 'string' && init.body.includes('"type":"dose_failed"')
        ? Promise.resolve(new Response(JSON.stringify({ results: [] }), { status: 200 }))
        : f(input, init),
    });
    const report = buildReport(t, { seed: 14, profile: profile.name, transport: 'pty', workers: 1, wallSeconds: 1, interrupted: false });
    expect(failures(report)).not.toEqual([]);
    expect(t.invariantViolations.length).toBeGreaterThan(0);
    expect(t.invariantViolations.every((v) => v.invariant === 5 && /0 final alarms at the centre/.test(v.detail))).toBe(true);
  }, 60_000);
});

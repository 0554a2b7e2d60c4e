// Power cuts of the real host process: `dosis host --port <pty> --db <file>` is SIGKILLed at random moments of its dosings and started again.
//
// The simulator runs in this process on one end of a socat pty pair (so its
// physical state and ledger outlive every host), the host in a child process
// on the other end, on the wall clock, with fast mechanics
// (scenarios/fixtures/dosis-r1-quick.json). The citizen presses as soon as a
// dose opens and takes the cup when the robot signals; a press arms a SIGKILL
// at a random moment of the dosing that follows. Rolls are loaded into the
// file while the host is down. After every roll the referee checks the store
// against the ledger: no slot cut twice, no command executed twice, every dose
// exactly one final state, nothing out of a pouch after its dose was final.
//
// Each start of a host costs about 4 s of wall time (node and tsx, the screens,
// then reconciling with the MCU), so three such robots (each its own pty pair, simulator, database and host) run side
// by side and share the cuts. DOSIS_POWER_CUTS=200 for the long run (default 20).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock, type Clock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { Random } from '../../../device-sim/src/random.js';
import { createPtyPair, keepSerialAttached } from '../../../device-sim/src/pty.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { explain, referee, scenarioRoll, ScenarioCitizen, tally, type RefereeReport } from '../scenarios/kit.js';

const RIGS = 3;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const QUICK_PROFILE = fileURLToPath(new URL('../scenarios/fixtures/dosis-r1-quick.json', import.meta.url));
const CUTS = Number(process.env.DOSIS_POWER_CUTS ?? 20);
const SEED = 77;
const silent = pino({ level: 'silent' });
/** Doses open one after another this far apart (wall clock); each is open until the next one's early window. */
const SPACING_MS = 1500;
/** A roll's timing: a dose opens (early) 1.4 s before its time, so the next one opens as soon as this one closes. */
const TIMING = { earlyMin: (SPACING_MS - 100) / 60_000, reminderEveryMin: 1, overdueAfterMin: 1, closeAfterMin: 2 };
const EARLY_MS = SPACING_MS - 100;
/**
 * From a host's start to the end of the dose it resumes: node and tsx (~0.7 s), loading and opening the screens
 * (~1 s; 2 s and more on a loaded machine), reconciling, the rest of the dosing and the citizen's take. The first
 * estimate; each rig then goes by the slowest start it has seen, so a loaded machine stretches the schedule instead of
 * making the doses close before a restarted host is back.
 */
const START_MS = 700 + 1500;
const REST_OF_DOSE_MS = 900;
const RESTART_MS = START_MS + REST_OF_DOSE_MS;
/** A SIGKILL falls this long (uniformly) after a press: the claim, the turn, the cut, the count, the cup presented, the cup taken. */
const KILL_WINDOW_MS = 450;
/** The host is down for up to this long (a reboot is longer; a crash-restart by systemd about this). */
const DOWN_MAX_MS = 300;
/** A started host is killed again, now and then, this long (uniformly) after it was started: in its start, its wait, its reconciliation or the motion it resumes. */
const REKILL_WINDOW_MS = [300, START_MS + 600] as const;
const REKILL_CHANCE = 0.3;

type HostStatus = { phase: string; notice: string | null };

/** One `dosis host` process; its status lines are the citizen's view of the screen. */
class HostProcess {
  readonly child: ChildProcess;
  status: HostStatus | undefined;
  out = '';
  err = '';
  readonly exited: Promise<void>;
  /** From the spawn to the first status after reconciling. */
  readyAfterMs: number | undefined;

  constructor(file: string, port: string, clock: Clock) {
    const spawnedAtMs = clock.now();
    this.child = spawn(process.execPath, ['bin/dosis.js', 'host', '--port', port, '--db', file, '--profile', QUICK_PROFILE, '--no-alarm-center', '--screens-port', '0', '--log-level', 'error'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    let buffer = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      this.out += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const m = /^status: (\S+)/.exec(line);
        if (m) this.status = { phase: m[1]!, notice: /notice (\S+)/.exec(line)?.[1] ?? null };
        if (m && m[1] !== 'starting') this.readyAfterMs ??= clock.now() - spawnedAtMs;
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.err.length < 20_000) this.err += d.toString();
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

function until(clock: Clock, pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = clock.now() + timeoutMs;
  return new Promise((resolve) => {
    const tick = () => (pred() ? resolve(true) : clock.now() > end ? resolve(false) : clock.setTimeout(tick, 20));
    tick();
  });
}

/** The dose before this one on its roll (its story usually explains a problem with this one). */
const previousDose = (doseId: string) => doseId.replace(/\d{3}$/, (n) => String(Math.max(1, Number(n) - 1)).padStart(3, '0'));

const sleep = (clock: Clock, ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'dosis-powercut-proc-'));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

type RigResult = {
  cuts: number;
  boots: number;
  rolls: number;
  at: { midMotion: number; dispensing: number; presented: number };
  reports: RefereeReport[];
  hostErrors: string;
};

/** One robot: a simulator on a pty in this process, `dosis host` processes on the other end, killed `cutsWanted` times. */
async function runRig(index: number, cutsWanted: number): Promise<RigResult> {
  const clock = new SystemClock();
  const profile = loadProfile(QUICK_PROFILE);
  const rng = new Random(SEED + index);
  const file = join(dir, `robot-${index}.db`);
  const pair = await createPtyPair({ clock });
  cleanups.push(() => pair.close());
  const sim = new DeviceSimulator({ clock, profile, seed: SEED + index, logger: silent, faults: { pillStuck: 0.2 } });
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(t), clock, retryMs: 20 });
  cleanups.push(() => sim.stop(), detach);
  // This process's own connection to the file: rolls are loaded through it while the host is down, the referee reads through it.
  const store = Store.open(file, { clock, timing: TIMING });
  cleanups.push(() => store.close());

  let host: HostProcess | undefined;
  const hosts: HostProcess[] = [];
  /** The restart budget: the slowest start seen so far on this machine, never less than the first estimate. */
  const restartMs = () => Math.max(RESTART_MS, ...hosts.map((h) => (h.readyAfterMs ?? 0) + REST_OF_DOSE_MS));
  cleanups.push(() => Promise.all(hosts.map((h) => h.kill())));
  const r: RigResult = { cuts: 0, boots: 0, rolls: 0, at: { midMotion: 0, dispensing: 0, presented: 0 }, reports: [], hostErrors: '' };
  let armed = false;
  /** Off while a roll is loaded, so that a kill never lands on a host with nothing to do. */
  let rekill = false;
  let currentRoll = '';

  const boot = () => {
    r.boots++;
    host = new HostProcess(file, pair.hostPath, clock);
    hosts.push(host);
    if (rekill && !armed && r.cuts < cutsWanted && rng.chance(REKILL_CHANCE)) armKill(rng.between(...REKILL_WINDOW_MS));
  };
  const armKill = (afterMs: number) => {
    armed = true;
    clock.setTimeout(() => void cut(), afterMs);
  };
  // While the host is down the schedule is moved on (test scaffolding, as the soak does): the next dose opens when the
  // restarted host can have finished the one it was killed in, so the run spends its time on restarts, not on waiting.
  const reschedule = (firstOpensAtMs: number) => {
    const rows = store.db.prepare(`SELECT dose_id FROM doses WHERE roll_id = ? AND state = 'scheduled' ORDER BY position`).all(currentRoll) as { dose_id: string }[];
    const move = store.db.prepare('UPDATE doses SET intake_at_ms = ? WHERE dose_id = ?');
    store.db.transaction(() => rows.forEach((row, i) => move.run(Math.round(firstOpensAtMs + EARLY_MS + i * SPACING_MS), row.dose_id)))();
  };
  const cut = async () => {
    const h = host;
    if (!h || !h.alive) {
      armed = false;
      return;
    }
    await h.kill();
    r.cuts++;
    // What the host left behind when it died, read from the file it wrote.
    const pending = (store.db.prepare('SELECT count(*) AS n FROM intents WHERE result IS NULL').get() as { n: number }).n;
    const state = store.openDoses(1)[0]?.state;
    if (pending > 0) r.at.midMotion++;
    if (state === 'dispensing') r.at.dispensing++;
    if (state === 'presented') r.at.presented++;
    host = undefined;
    const downMs = rng.between(0, DOWN_MAX_MS);
    reschedule(clock.now() + downMs + restartMs());
    await sleep(clock, downMs);
    armed = false;
    boot();
  };

  // The citizen presses as a dose opens and every 600 ms while it is open, takes the cup 250 ms after the light asks for
  // it and, while the light still asks, again; what they see of the robot is the host's status line (its screen) and,
  // for the dose it shows, this process's connection to the file.
  const citizen = new ScenarioCitizen({
    clock, sim, pollMs: 20,
    robot: () => (host?.alive && host.status ? { ...host.status, store } : undefined),
    habits: { pressAfterDueMs: [-EARLY_MS + 20], pressEveryMs: 600, liftDelayMs: 250, placeBackMs: 100, liftAgainAfterMs: 200 },
    citizen: { lookEveryMs: 20, pressAgainMs: 600, pressMarginMs: 0 },
  });
  const press = sim.pressButton.bind(sim);
  sim.pressButton = () => {
    press();
    if (!armed && r.cuts < cutsWanted) armKill(rng.between(0, KILL_WINDOW_MS));
  };
  const openOf = (rollId: string) => (store.db.prepare('SELECT count(*) AS n FROM doses WHERE roll_id = ? AND final_at_ms IS NULL').get(rollId) as { n: number }).n;
  citizen.start();
  cleanups.push(() => citizen.stop());

  while (r.cuts < cutsWanted) {
    // The host is down while the pharmacy loads the next roll into the file (and the carousel).
    rekill = false;
    await host?.kill();
    host = undefined;
    const rollId = `K${index}${++r.rolls}`;
    currentRoll = rollId;
    const doses = Math.min(profile.slotCount, Math.ceil((cutsWanted - r.cuts) / (1 + REKILL_CHANCE)) + 2);
    const pouches = scenarioRoll(rollId, clock.now(), Array.from({ length: doses }, () => 1 + rng.int(5)), 0, SPACING_MS).map((p, i) => ({
      ...p, intakeAtMs: clock.now() + restartMs() + EARLY_MS + i * SPACING_MS, timing: TIMING,
    }));
    sim.ledger.clear();
    sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    store.loadRoll({ rollId, citizenId: 'C1', pouches }, 'anna');
    boot();
    rekill = true;
    const done = await until(clock, () => openOf(rollId) === 0 && !armed, doses * (SPACING_MS + restartMs()) + 30_000);
    const report = referee(store, sim.ledger, { rollIds: [rollId] });
    const story = (ids: string[]) => ids.map((id) => explain(store, sim.ledger, id)).join('\n');
    const why = `roll ${rollId}: ${JSON.stringify(tally(report.verdicts))}; last host stderr: ${hosts.at(-1)?.err.slice(-2000) ?? ''}`;
    expect(done, `${why}\n${story(report.verdicts.filter((v) => v.red || v.final === 'scheduled').map((v) => v.doseId))}`).toBe(true);
    const named = (text: string) => [...new Set(text.match(new RegExp(`${rollId}-\\d{3}`, 'g')) ?? [])];
    expect(report.violations, `${why}\n${story(named(report.violations.join(' ')).flatMap((id) => [previousDose(id), id]))}`).toEqual([]);
    expect(report.verdicts.filter((v) => v.red), `${why}\n${story(report.verdicts.filter((v) => v.red).map((v) => v.doseId))}`).toEqual([]);
    r.reports.push(report);
  }
  await host?.kill();
  citizen.stop();
  r.hostErrors = hosts.map((h) => h.err).join('');
  return r;
}

describe('power cuts of the host process', () => {
  it(`SIGKILL of dosis host at ${CUTS} random moments of its dosings, restarted each time`, async () => {
    const startedAtMs = Date.now();
    const share = (i: number) => Math.floor(CUTS / RIGS) + (i < CUTS % RIGS ? 1 : 0);
    const rigs = await Promise.all(Array.from({ length: RIGS }, (_, i) => runRig(i, share(i))));
    const sum = (f: (r: RigResult) => number) => rigs.reduce((n, r) => n + f(r), 0);
    const verdicts = rigs.flatMap((r) => r.reports.flatMap((x) => x.verdicts));
    const releases = sum((r) => r.reports.reduce((n, x) => n + x.releases, 0));
    const executions = sum((r) => r.reports.reduce((n, x) => n + x.executions, 0));
    const cuts = sum((r) => r.cuts);
    const hit = sum((r) => r.at.midMotion + r.at.dispensing + r.at.presented);
    const seconds = ((Date.now() - startedAtMs) / 1000).toFixed(1);
    console.info(
      `host process power cuts: ${cuts} SIGKILLs on ${RIGS} robots in ${seconds} s (${sum((r) => r.at.midMotion)} mid-motion, ${sum((r) => r.at.dispensing)} mid-dispensing, ` +
        `${sum((r) => r.at.presented)} with the dose in the cup), ${sum((r) => r.boots)} host starts, ${sum((r) => r.rolls)} rolls, ${verdicts.length} doses, ` +
        `${executions} motions, ${releases} releases checked; ${JSON.stringify(tally(verdicts))}`,
    );
    expect(cuts).toBe(CUTS);
    // The kills hit dosings, not only idle hosts; and the robot still dispensed most doses right.
    expect(hit).toBeGreaterThan(CUTS / 4);
    expect(verdicts.filter((v) => v.final === 'taken').length).toBeGreaterThan(verdicts.length / 2);
    // No host wrote an error to its log (a crash loop or a store error would show here).
    expect(rigs.map((r) => r.hostErrors).join('')).toBe('');
  }, Math.max(120_000, CUTS * 3000));
});

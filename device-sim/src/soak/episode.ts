// One soak episode: the real controller (machine, link, store) against the simulator, the pharmacy, the citizen, and the referee.
//
// The episode plays the world around the robot and keeps its own copy of it:
// the pharmacy packs each roll (now and then a pouch with one pill more or
// fewer than printed, an empty pouch, a foreign pill), the citizen has an
// intent for each dose (press or forget, press too early or after the dose is
// overdue, carry the cup away, lift it slowly), the host crashes and boots
// again on what its store committed, and host and MCU lose power together; rarer
// events are aimed at the moments that matter (world/aim.ts: the host down
// during a release or between two commits, the MCU reset on a retry, the cup
// lifted while pills fall, the last seconds of a window). After each
// dose the referee (referee.ts) judges it from that copy, the simulator's
// ledger and what the real alarm centre (centre.ts) holds; the controller's
// records are read only to pace the run (when a dose is over, when its light
// and its alarm outbox have settled).
//
// Both transports play that world. On the pty (socat pairs, serialport, the
// wall clock with the citizen's minutes scaled: PTY_TIME_SCALE) a crashed host's
// serial port closes with it and the next host opens it again on the same store
// file, a power cut takes the simulator's power too, and the robot's delivery
// loop posts to the centre through the profile's network faults. The aimed
// events need virtual time and the care staff would race dose times scaled to
// milliseconds: both are the memory transport's only.
//
// Idle time is skipped, not simulated: the citizen's next dose is placed
// relative to the moment the previous one ended, so a dosing costs the
// seconds of its own motions and not the hours between doses. Rolls of a
// full carousel are loaded one after another, so rotations, label checks and
// wrong-pouch faults are exercised as on a real roll.
//
// The care staff (profiles with `care`) act through the robot's own care
// actions, the ones the pharmacy screen calls (the screens' backend: the store
// action, then `Controller.scheduleChanged`): between doses, as a dose is
// placed, they pause the robot for the next few doses (some pauses ended
// early), release the next doses for a travel pack, or withdraw pouches from a
// time (the rest of the roll) or by label; now and then with the first dose's
// window already open (a pause before it is due, travel and withdrawal while
// the robot reminds). The doses of one action are placed one after the other,
// minutes apart, so they cost little simulated time; the citizen may still
// press for one (confused). The referee judges each from the episode's own
// record of what the staff did, and when the roll ends looks again for a cut
// or an alarm that came late, and for the centre's silence of each pause.
// Aimed (world/aim.ts, careAtClaim), the staff also take the very dose the
// citizen pressed for as the robot checks the press, between the MCU's STATUS
// and the robot's claim: the robot must refuse its own claim and move nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database, { type Statement } from 'better-sqlite3';
import pino from 'pino';
import { ManualClock, SystemClock, type Clock, type TimerHandle } from '../../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../../protocol/src/transport.js';
import { loadProfile, parseProfile, type HardwareProfile } from '../../../hardware/src/profile.js';
import type { ControllerOptions, ControllerStatus, DosingOutcome } from '../../../firmware-host/src/controller.js';
import { DEFAULT_TIMING, pouchLabel, type DoseTiming, type ScheduledPouch } from '../../../firmware-host/src/roll/types.js';
import { SerialTransport } from '../../../hardware/src/serial-transport.js';
import { DeviceSimulator } from '../simulator.js';
import { Random } from '../random.js';
import type { FaultRates } from '../faults.js';
import { createPtyPair, keepSerialAttached } from '../pty.js';
import { PRESENTED_GRACE_MS } from '../../../firmware-host/src/dosing/dose-machine.js';
import { Citizen, LOOK_EVERY_MS, PRESS_AGAIN_MS, type CitizenPlan } from '../world/citizen.js';
import { staffTakeCup } from '../world/staff.js';
import { Aim } from '../world/aim.js';
import { emptyCare, emptyTally, mergeTallies, type SoakTally } from './report.js';
import { episodeSeed, type EpisodeSpec } from './runner.js';
import { swarmProfile, type SoakProfile } from './soak-profile.js';
import { bootHost, type HostOptions, type HostProcess } from './host.js';
import { NO_NETWORK_FAULTS, SOAK_DEVICE_ID, SoakCentre } from './centre.js';
import { countTransitions } from './coverage.js';
import { CoastingClock } from './coast.js';
import { AlarmDelivery, type DeliveryOptions } from '../../../firmware-host/src/alarm/delivery.js';
import { outboxDepth } from '../../../firmware-host/src/alarm/outbox.js';
import { CARE_INVARIANT, FINAL_ALARMS, judgeCareDose, judgeDose, PRESS_MARGIN_MS, windowsOf, type CareClass, type Intent, type Judgement, type Packing, type Prescription } from './referee.js';
import type { CareBackend, CareResult } from '../../../firmware-host/src/screens/backend.js';

export type EpisodeOptions = {
  /** QA only: a replacement for the controller's verdict rules (to prove the referee catches a wrong controller). */
  judge?: ControllerOptions['judge'];
  /** QA only: changes each controller as it boots (a test build with a deliberate fault). */
  wrap?: HostOptions['wrap'];
  /** QA only: a test build of the robot's side of the network (what its delivery loop really sends). */
  wrapFetch?: (f: typeof globalThis.fetch) => typeof globalThis.fetch;
  /** Each episode draws its own faults and rates from its seed (see swarmProfile). */
  swarm?: boolean;
  /** The memory transport skips idle heartbeats in virtual time (coast.ts); without it every line is played (exact mode). */
  coalesce?: boolean;
  /** Called after every dose with its judgement (tests). */
  onDosing?: (d: DosingVerdict) => void;
};

export type DosingVerdict = {
  dosing: number;
  doseId: string;
  /** The robot's own word on the dose (undefined when a crash swallowed it). */
  outcome: DosingOutcome | undefined;
  soakClass: Judgement['cls'] | CareClass;
  reason: string | null;
  robotFailure: boolean;
  /** The dose's events the alarm centre holds when it is judged, one per event id, as an operator sees them. */
  alarms?: string[];
  /** The staff took this dose out of dispensing as the robot checked the citizen's press (aim.careAtClaim). */
  careAtClaim?: true;
};

/** Samples of the running class counts, every this many dosings (the report's chart). */
export const SAMPLE_EVERY = 100;

/** The pty transport runs on the wall clock; these robots' mechanics are fast so a dosing takes milliseconds. */
const PTY_HARDWARE: Partial<HardwareProfile> = {
  id: 'dosis-r1-soak-pty', stepsPerSecond: 400_000, labelReadMs: 1, cutMs: 1, pillFallMs: { min: 1, max: 4 }, settleMs: 25, shakeMs: 5, cupDebounceMs: 0,
};
/**
 * On the pty, time runs on the wall clock: the citizen's delays and the dose
 * windows (minutes on a real robot) are scaled by this, so a forgotten dose
 * closes in 15 s instead of two hours (a minute is 120 ms). The mechanics keep
 * their settle time: with less, pills still falling are reported short. The
 * robot's own wall-clock timings (a held dose's retry, the MCU's event
 * retransmission, heartbeats) are not scaled, nor is the event loop's lag on a
 * loaded machine (a hundred milliseconds and more): with a minute much shorter
 * than that, a press near a window's edge would reach the robot minutes late.
 */
const PTY_TIME_SCALE = 0.002;
/**
 * Robots run side by side in a pty episode, each with its own socat pair, simulator and store: a dosing waits on
 * motions and on the citizen most of its ~90 ms, so one process keeps this many busy at under one core.
 */
export const PTY_ROBOTS = 16;

const MIN = 60_000;
/** Longest a dosing may take before the episode calls the controller stuck (virtual time). */
const DOSE_LIMIT_MS = 6 * 3600_000;
/** ... but never less than this on the wall clock (motions take real time). */
const MIN_DOSE_LIMIT_MS = 30_000;
/** A wall-clock wait looks again at least this often even when the controller says nothing. */
const WALL_POLL_MS = 20;
/** The citizen's first act for the next dose comes this long after the one before ended (the staff are done by then). */
const LEAD_MS = 60_000;
/** A host crash falls this long (uniformly) after the citizen's first press: checking, rotating, releasing, counting, presented. */
const CRASH_WINDOW_MS = 40_000;
/** The robot's light must show a dose's end within this long (a lost SIGNAL is sent again after a second; an MCU may be silent 5 s). */
const SETTLE_MS = 10_000;
/** ... and on the wall clock, at least this long (a SIGNAL crosses the pty in a few ms). */
const WALL_SETTLE_MS = 50;
/** The alarm outbox must drain within this much virtual time once the dose is over (backoff is capped at 5 min). */
const DELIVERY_LIMIT_MS = 3600_000;
/** Longest a request to the in-process centre may take on the wall clock (its commits fsync). */
const REQUEST_LIMIT_MS = 60_000;
/** A crashed host boots again within this long. */
const REBOOT_MAX_MS = 15_000;
/**
 * On the pty (wall clock), a crash falls this long after the robot took the press: a dosing's motions take real
 * milliseconds there (fast mechanics, the settle time) while the citizen's minutes are scaled, so the window is the
 * motions' own. It is counted from the robot's taking the press (its status says it dispenses the dose), not from the
 * press: a loaded machine's event loop may lag a hundred milliseconds and more, and a power cut that falls while the
 * press still crosses the wire loses it with the MCU's memory (no robot can know of it). On the memory transport those
 * few milliseconds are their real share of a 40 s window; on the pty the lag would make them a large share.
 */
const PTY_CRASH_WINDOW_MS = 150;
/** ... and the host boots again within this long (opening the port and reconciling take a few milliseconds more). */
const PTY_REBOOT_MAX_MS = 30;
/**
 * The delivery loop on the pty's wall clock: its backoff (1 s to 5 min on a robot), poll and request timeout shrunk so
 * a lost request or a hanging one costs milliseconds. A request to the in-process centre that is slower than the
 * timeout is not lost: the centre's stand-in network ignores the abort unless it hangs on purpose.
 */
const PTY_DELIVERY = { baseBackoffMs: 5, maxBackoffMs: 100, pollMs: 50, requestTimeoutMs: 100 } as const;
/**
 * On the wall clock a press may reach the robot this much later than the citizen made it (a loaded machine's event
 * loop): a press meant to fall outside the window keeps this far from its edge, and the press margin before the close
 * (the citizen's and the referee's) is at least this, so the robot and the referee never see one press on two sides of
 * an edge.
 */
const PTY_PRESS_LAG_MS = 250;
/** Longest the outbox may take to drain into the centre once a dose is over, on the wall clock. */
const DELIVERY_WALL_LIMIT_MS = 30_000;

function scaledTiming(scale: number): DoseTiming {
  const t = DEFAULT_TIMING;
  return { earlyMin: t.earlyMin * scale, reminderEveryMin: t.reminderEveryMin * scale, overdueAfterMin: t.overdueAfterMin * scale, closeAfterMin: t.closeAfterMin * scale };
}

/** The physical robot and the cable to it; the host is booted (and booted again) on top. */
type World = {
  clock: Clock;
  sim: DeviceSimulator;
  hw: HardwareProfile;
  /**
   * The host's store: a file (the pty transport, whose crashing hosts reopen it), ':memory:' when the host never
   * crashes, or 'image' (the memory transport's crashing hosts): in memory, each host boots on the image of the store
   * its dead predecessor committed (Store.image), which is what the file would hold, with no disk in the way.
   */
  dbPath: string;
  /** A new host's end of the cable (each boot opens its own). */
  open: (hostClock: Clock) => Transport | Promise<Transport>;
  /** A host process died: what it held open closes with it (the serial port), and nothing it would have heard reaches it. */
  hostDied: (hostClock: Clock) => void;
  /** The profile draws host crashes and power cuts (the store then outlives each host: see dbPath). */
  crashes: boolean;
  /** A crash falls this long (uniformly) after the citizen's first press in the window (on the wall clock: after the robot took it). */
  crashWindowMs: number;
  /** A crashed host boots again within this long. */
  rebootMaxMs: number;
  /** The delivery loop's timings on this world's clock (none: the robot's own). */
  deliveryTuning: Partial<Pick<DeliveryOptions, 'baseBackoffMs' | 'maxBackoffMs' | 'requestTimeoutMs' | 'pollMs'>>;
  close(): Promise<void>;
};

export async function runEpisode(spec: EpisodeSpec, profile: SoakProfile, transport: 'memory' | 'pty', opts: EpisodeOptions = {}): Promise<SoakTally> {
  const p = opts.swarm ? swarmProfile(profile, spec.seed) : profile;
  if (transport === 'memory') return runRobot(spec, p, memoryWorld(spec, p, opts.coalesce === true), 1, opts);
  // On the wall clock one robot waits most of the time (motions, the citizen); several robots, each on its own pty, share the CPU.
  const robots = Math.min(PTY_ROBOTS, spec.dosings);
  const parts: EpisodeSpec[] = [];
  for (let k = 0, first = spec.firstDosing; k < robots; k++) {
    const dosings = Math.floor(spec.dosings / robots) + (k < spec.dosings % robots ? 1 : 0);
    parts.push({ index: spec.index, seed: episodeSeed(spec.seed, k), firstDosing: first, dosings });
    first += dosings;
  }
  const tallies = await Promise.all(parts.map(async (part) => runRobot(part, p, await ptyWorld(part, p), PTY_TIME_SCALE, opts)));
  return mergeTallies(tallies);
}

async function runRobot(spec: EpisodeSpec, profile: SoakProfile, world: World, scale: number, opts: EpisodeOptions): Promise<SoakTally> {
  const episode = new Episode(spec, profile, world, scale, opts);
  try {
    return await episode.run();
  } finally {
    await episode.shutdown();
    await world.close();
  }
}

function memoryWorld(spec: EpisodeSpec, profile: SoakProfile, coalesce: boolean): World {
  const clock = coalesce ? new CoastingClock() : new ManualClock();
  const hw = loadProfile('dosis-r1');
  const sim = new DeviceSimulator({ clock, profile: hw, seed: spec.seed, faults: profile.faults as Partial<FaultRates>, logger: pino({ level: 'silent' }), coast: coalesce });
  const crashes = (profile.host?.crashRate ?? 0) > 0 || (profile.host?.powerCutRate ?? 0) > 0 || Aim.downs(profile.aim);
  return {
    clock, sim, hw, crashes, crashWindowMs: CRASH_WINDOW_MS, rebootMaxMs: REBOOT_MAX_MS, deliveryTuning: {},
    dbPath: crashes ? STORE_IMAGE : ':memory:',
    open: (hostClock) => {
      // Each (re)open is a fresh cable: the simulator is re-attached to its far end.
      const [near, far] = createMemoryWire(hostClock, { baudRate: hw.baudRate });
      sim.attach(far);
      if (clock instanceof CoastingClock) clock.wire = [near, far];
      return near;
    },
    // The dead host's cable is simply no longer the simulator's: what it writes, and what would reach it, goes nowhere.
    hostDied: () => undefined,
    close: async () => {
      sim.stop();
    },
  };
}

/** World.dbPath of a host whose store is kept as an image across its crashes. */
const STORE_IMAGE = 'image';

/** The image of a new, empty store: what the first host of a crashing world boots on. */
function emptyImage(): Buffer {
  const db = new Database(':memory:');
  try {
    return db.serialize();
  } finally {
    db.close();
  }
}

async function ptyWorld(spec: EpisodeSpec, profile: SoakProfile): Promise<World> {
  const clock = new SystemClock();
  const hw = parseProfile({ ...loadProfile('dosis-r1'), ...PTY_HARDWARE }, 'soak pty profile');
  const pair = await createPtyPair({ clock });
  const sim = new DeviceSimulator({ clock, profile: hw, seed: spec.seed, faults: profile.faults as Partial<FaultRates>, logger: pino({ level: 'silent' }) });
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: hw.baudRate, clock, attach: (t) => sim.attach(t), logger: pino({ level: 'silent' }) });
  const crashes = (profile.host?.crashRate ?? 0) > 0 || (profile.host?.powerCutRate ?? 0) > 0;
  const dir = crashes ? mkdtempSync(join(tmpdir(), 'dosis-soak-pty-')) : undefined;
  // Each host process's serial ports: closed when it dies (as the kernel closes a dead process's files).
  const ports = new Map<Clock, Set<ProcessPort>>();
  const dead = new WeakSet<Clock>();
  return {
    clock, sim, hw, crashes, crashWindowMs: PTY_CRASH_WINDOW_MS, rebootMaxMs: PTY_REBOOT_MAX_MS, deliveryTuning: PTY_DELIVERY,
    dbPath: dir ? join(dir, 'robot.db') : ':memory:',
    open: async (hostClock) => {
      const port = new ProcessPort(await SerialTransport.open(pair.hostPath, hw.baudRate));
      // A port the process asked for before it died, opened after: the process is gone, so is its port.
      if (dead.has(hostClock)) port.kill();
      else ports.set(hostClock, (ports.get(hostClock) ?? new Set()).add(port));
      return port;
    },
    hostDied: (hostClock) => {
      dead.add(hostClock);
      for (const port of ports.get(hostClock) ?? []) port.kill();
      ports.delete(hostClock);
    },
    close: async () => {
      sim.stop();
      detach();
      for (const set of ports.values()) for (const port of set) port.kill();
      await pair.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A host process's serial port: once the process is dead (`kill`), the port is closed and nothing more passes either
 * way (no line, no close notice reaches the dead process's link, which would otherwise act on it), as the kernel
 * closes the files of a process that died.
 */
class ProcessPort implements Transport {
  #alive = true;
  constructor(private readonly port: Transport) {}
  get isOpen(): boolean {
    return this.#alive && this.port.isOpen;
  }
  write(data: string): void {
    if (this.#alive) this.port.write(data);
  }
  onLine(handler: (line: string) => void): void {
    this.port.onLine((line) => {
      if (this.#alive) handler(line);
    });
  }
  onClose(handler: (reason: string) => void): void {
    this.port.onClose((reason) => {
      if (this.#alive) handler(reason);
    });
  }
  close(reason?: string): void {
    this.port.close(reason);
  }
  kill(): void {
    this.#alive = false;
    this.port.close('the process died');
  }
}

type Dose = { prescription: Prescription; intent: Intent; plan: CitizenPlan; crashAtMs: number | null; powerCut: boolean };

/** The staff's care actions, as the pharmacy screen offers them. */
type CareAction = 'pause' | 'travel' | 'withdrawFromTime' | 'withdrawByLabel';
const CARE_CLASS_OF: Record<CareAction, CareClass> = { pause: 'suspended', travel: 'travel', withdrawFromTime: 'withdrawn', withdrawByLabel: 'withdrawn' };
/** One care action and the doses it takes out of dispensing (the referee's own record of it). */
type CareGroup = {
  action: CareAction;
  kind: CareClass;
  /** In roll order; a pause ended early drops the doses it gives back. */
  doses: string[];
  actAtMs: number;
  /** When the action took effect (set when the staff act). */
  actedAtMs: number | null;
  /** A pause the staff end early: right after this dose of it. */
  resumeAfter: string | null;
  /** Index of the pause in the episode's list. */
  pause: number | null;
  /** Aimed at the check of a press (aim.careAtClaim), not drawn as a dose was placed. */
  atClaim?: true;
};
/** The staff's id on the robot's care actions. */
const CARE_STAFF = 'soak-staff';
/** Doses of one care action follow each other this far apart (virtual time), and one the citizen presses for this far. */
const CARE_GAP_MS = 30_000;
const CARE_PRESSED_GAP_MS = 4 * MIN;
/** How long after a confused press the episode watches for the robot (wrongly) dispensing and presenting the dose. */
const CARE_WATCH_MS = 2 * MIN;
/** A pause ends this long after its last dose is due. */
const PAUSE_TAIL_MS = 30_000;

class Episode {
  readonly #tally: SoakTally;
  /** The citizen's and the pharmacy's choices come from their own stream, so fault draws in the simulator do not shift them. */
  readonly #rng: Random;
  /** The delivery loop's jitter: its own stream, so it shifts neither the citizen nor the faults. */
  readonly #netRng: Random;
  readonly #clock: Clock;
  readonly #sim: DeviceSimulator;
  readonly #citizen: Citizen;
  readonly #timing: DoseTiming;
  readonly #limitMs: number;
  /** How close to the window's close a press no longer counts (and the citizen no longer presses). */
  readonly #pressMarginMs: number;
  /** How far from the early window a press meant to come too early stays (0 on virtual time). */
  readonly #pressLagMs: number;
  #host: HostProcess | undefined;
  #delivery: AlarmDelivery | undefined;
  #centre: SoakCentre | undefined;
  readonly #dead: HostProcess[] = [];
  /** The store a crashing host left, as its file would hold it (World.dbPath 'image'). */
  #storeImage: Buffer | undefined;
  #boots = 0;
  #roll: string[] = [];
  #next = 0;
  #rolls = 0;
  /** The referee's copy of each dose: prescription, the citizen's intent and plan. */
  #doses = new Map<string, Dose>();
  #outcomes = new Map<string, DosingOutcome[]>();
  #status: ControllerStatus | undefined;
  /** Wakes a wall-clock wait early: the controller announced something. */
  #wake: (() => void) | undefined;
  /** Places the next dose of the roll in time (prepared once per host). */
  #retime: Statement<[number, string]> | undefined;
  #alarms: Statement<[string], { type: string }> | undefined;
  /** The ledger from here on belongs to the dose under way. */
  #periodStartMs = 0;
  /** The dose whose citizen intent and crash are in effect. */
  #begun: string | undefined;
  #crashTimer: TimerHandle | undefined;
  /** Rare events aimed at the moments that matter (world/aim.ts); on the memory transport only (virtual time). */
  readonly #aim: Aim | undefined;
  /** The care staff's draws: their own stream, drawn from only when the profile has care actions. */
  readonly #careRng: Random;
  /** Dose → the care action that took it out of dispensing. */
  readonly #careOf = new Map<string, CareGroup>();
  /** Doses out of dispensing of the roll loaded, for the audit when it ends; `flagged` once the referee found fault. */
  #careRoll: { doseId: string; slot: number; kind: CareClass; flagged: boolean }[] = [];
  /** Every pause the staff made, and whether they ended it early: the centre must hold one silence each, of its span. */
  readonly #pauses: { fromMs: number; untilMs: number; endedEarly: boolean }[] = [];
  #pausesAudited = 0;
  /** Where the roll's doses wait until their turn (a year ahead). */
  #rollFarMs = 0;
  /** The staff's action aimed at a press being checked (aim.careAtClaim): its own stream, the action it takes. */
  readonly #staffRng: Random;
  /** The dose whose end the episode waits for (the press being checked is this one's). */
  #waitingFor: string | undefined;
  /** The staff are to take this dose out of dispensing now, before the robot claims it (set by the aim, done by #dose). */
  #careAtClaim: string | undefined;

  constructor(
    private readonly spec: EpisodeSpec,
    private readonly profile: SoakProfile,
    private readonly world: World,
    private readonly scale: number,
    private readonly opts: EpisodeOptions,
  ) {
    this.#tally = emptyTally(spec.firstDosing);
    this.#rng = new Random((spec.seed ^ 0x5eed_c17e) >>> 0);
    this.#netRng = new Random((spec.seed ^ 0x7e1a_9d01) >>> 0);
    this.#careRng = new Random((spec.seed ^ 0x0ca2_e5a1) >>> 0);
    this.#staffRng = new Random((spec.seed ^ 0x0ca2_c1a1) >>> 0);
    this.#clock = world.clock;
    this.#sim = world.sim;
    this.#timing = scaledTiming(scale);
    this.#pressLagMs = world.clock instanceof ManualClock ? 0 : PTY_PRESS_LAG_MS;
    this.#pressMarginMs = Math.max(PRESS_MARGIN_MS * scale, this.#pressLagMs);
    // On the wall clock a dose presented just before its close stays the citizen's for the dose machine's grace (not scaled).
    this.#limitMs = Math.max(MIN_DOSE_LIMIT_MS, DOSE_LIMIT_MS * scale) + (world.clock instanceof ManualClock ? 0 : PRESENTED_GRACE_MS);
    this.#citizen = new Citizen({
      clock: world.clock, sim: world.sim, notice: () => this.#status?.notice ?? null,
      pressMarginMs: this.#pressMarginMs, lookEveryMs: LOOK_EVERY_MS * scale, pressAgainMs: PRESS_AGAIN_MS * scale,
    });
    if (world.clock instanceof CoastingClock) world.clock.coastOver({ sim: world.sim, link: () => this.#host?.link, host: () => this.#host, heartbeatMs: world.hw.heartbeatMs });
    const host = profile.host;
    const downs = (host?.crashRate ?? 0) + (host?.powerCutRate ?? 0);
    this.#aim = world.clock instanceof ManualClock && Aim.active(profile.aim) ? new Aim(profile.aim!, new Random((spec.seed ^ 0x0a1f_b06e) >>> 0), {
      clock: world.clock, sim: world.sim, powerCutShare: downs > 0 ? (host?.powerCutRate ?? 0) / downs : 0,
      hostUp: () => world.crashes && this.#host !== undefined,
      hostDown: (powerCut, backAtMs) => this.#crash(powerCut, backAtMs),
      liftCup: (done) => this.#citizen.liftNow(done),
      count: (e) => bump((this.#tally.world.events ??= {}), e),
      checkingPress: () => this.#checkingPress(),
      careAtClaim: () => {
        this.#careAtClaim = this.#waitingFor;
      },
    }, this.#staffRng) : undefined;
  }

  async run(): Promise<SoakTally> {
    // The network's chances come from their own stream too.
    this.#centre = await SoakCentre.open(this.#clock, new Random((this.spec.seed ^ 0x0a1a_c3e7) >>> 0), this.profile.network ?? NO_NETWORK_FAULTS);
    this.#boot();
    this.#periodStartMs = this.#clock.now();
    if (!(await this.#wait(() => this.#status?.reconciled === true, 60_000))) throw new Error(`episode ${this.spec.index}: the controller never reconciled with the simulator`);
    while (this.#tally.dosings < this.spec.dosings) {
      if (this.#next >= this.#roll.length) {
        await this.#auditCare();
        this.#loadRoll();
      }
      const doseId = this.#roll[this.#next]!;
      if (this.#careOf.has(doseId)) await this.#careDose(doseId);
      else await this.#dose(doseId);
      this.#next++;
    }
    await this.#auditCare();
    if (this.#centre) this.#tally.world.network = { ...this.#centre.counts };
    this.#tally.world.faults = { ...this.#sim.fired };
    return this.#tally;
  }

  async shutdown(): Promise<void> {
    this.#citizen.stop();
    // Dead hosts' connections are closed as they are; the live one shuts down as a robot does.
    this.#bury();
    await this.#host?.robot.close();
    this.#host?.clock.die();
    this.#host = undefined;
    await this.#centre?.close();
    this.#centre = undefined;
  }

  // ------------------------------------------------------------ the host

  #boot(): void {
    const seed = this.spec.seed;
    const centre = this.#centre;
    // A dead process does nothing: what its code still runs through after the crash (its wire closing under it, a
    // request failing) is not the robot's, and draws nothing from the world.
    const count = countTransitions(this.#tally.paths);
    let self: HostProcess | undefined;
    const alive = () => self === undefined || this.#host === self;
    const h = bootHost({
      world: this.#clock, profile: this.world.hw, dbPath: this.world.dbPath === STORE_IMAGE ? (this.#storeImage ??= emptyImage()) : this.world.dbPath, timing: this.scale === 1 ? undefined : this.#timing,
      logger: pino({ level: 'silent' }), firstCommandNumber: (seed & 0xffffff) + this.#boots * 0x1000000,
      open: this.world.open, controller: { judge: this.opts.judge, inspect: (e) => alive() && count(e) }, wrap: this.opts.wrap,
      // The robot's own delivery loop, on the host's clock: it dies with the host and a new one starts at boot.
      alarm: centre ? () => ({
        url: 'http://alarm-centre.soak', deviceId: SOAK_DEVICE_ID, secret: centre.secret, fetch: this.#fetchOf(centre, alive),
        tuning: { random: () => (alive() ? this.#netRng.next() : 0), ...this.world.deliveryTuning },
      }) : null,
    });
    self = h;
    this.#boots++;
    this.#host = h;
    if (this.#aim) this.#powerFailsBetweenCommits(h);
    this.#status = undefined;
    this.#retime = h.store.db.prepare(`UPDATE doses SET intake_at_ms = ? WHERE dose_id = ? AND state = 'scheduled'`);
    this.#alarms = h.store.db.prepare('SELECT type FROM outbox WHERE dose_id = ?') as Statement<[string], { type: string }>;
    this.#delivery = h.robot.delivery;
    // What a dead host's controller still says (its link going down under it) is nobody's: its screen is dark, and its
    // word on a dose is not the robot's.
    h.controller.on('outcome', (o) => alive() && this.#onOutcome(o));
    h.controller.on('status', (s) => {
      if (!alive()) return;
      this.#status = s;
      if (this.#crashOnTake) this.#armCrashOnTake(s);
      // The screen shows the controller's notice: the ledger keeps what it showed and when.
      this.#sim.ledger.noteScreen(this.#clock.now(), s.notice);
      this.#wake?.();
    });
  }

  /**
   * A host that can go down between two commits of one step (aim.hostDownAfterOutcome): once the store has committed a
   * motion's outcome, the process may die right there; the throw stops the rest of the step as the power loss would.
   */
  #powerFailsBetweenCommits(h: HostProcess): void {
    const store = h.store;
    const complete = store.completeIntent.bind(store);
    store.completeIntent = (commandId, result) => {
      complete(commandId, result);
      if (this.#host === h && this.#aim?.downAfterCommit(result)) throw new HostGone();
    };
  }

  /**
   * Closes what the dead hosts still hold as it is. At the episode's end only: closing a link wakes its dead controller,
   * and nothing a dead host does may happen while the episode runs.
   */
  #bury(): void {
    // Their clocks are dead since the crash: what closing makes them arm never reaches the world's clock.
    for (const h of this.#dead.splice(0)) {
      h.link.close();
      h.store.close();
    }
  }

  /** Requests the robot's delivery loop made (counted where it calls fetch, whatever a test build does below). */
  #sent = 0;

  #fetchOf(centre: SoakCentre, alive: () => boolean): typeof globalThis.fetch {
    const f = this.opts.wrapFetch ? this.opts.wrapFetch(centre.fetch) : centre.fetch;
    return (input, init) => {
      // A dead process sends nothing (its delivery loop may still be woken, as its link goes down under it).
      if (!alive()) return Promise.reject(new Error('the host process is gone'));
      this.#sent++;
      return f(input, init);
    };
  }

  /** The host process dies where it stands (with the MCU too, on a power cut) and boots again a little later (or at `backAtMs`). */
  #crash(powerCut: boolean, backAtMs?: number): void {
    const h = this.#host;
    if (!h) return;
    h.clock.die();
    this.world.hostDied(h.clock);
    // What the store's file would hold now. The dead process's connection closes with it (what its code still tries on
    // the store fails, as nothing of a dead process reaches the disk).
    if (this.world.dbPath === STORE_IMAGE) {
      this.#storeImage = h.store.image();
      h.store.close();
    }
    this.#delivery?.stop();
    this.#delivery = undefined;
    // The dead process's connections close with it.
    this.#centre?.dropHung();
    this.#dead.push(h);
    this.#host = undefined;
    this.#status = undefined;
    if (powerCut) {
      this.#tally.world.powerCuts++;
      this.#sim.powerCycle();
    } else this.#tally.world.hostCrashes++;
    this.#clock.setTimeout(() => this.#boot(), backAtMs !== undefined ? backAtMs - this.#clock.now() : this.#rng.between(0, this.world.rebootMaxMs));
  }

  // ------------------------------------------------------------ the pharmacy and the citizen

  #packing(): Packing {
    const ph = this.profile.pharmacy;
    if (!ph) return 'ok';
    const u = this.#rng.next();
    let acc = 0;
    for (const [k, rate] of [['one_more', ph.oneMoreRate], ['one_fewer', ph.oneFewerRate], ['empty', ph.emptyRate], ['foreign', ph.foreignRate]] as const) {
      acc += rate;
      if (u < acc) return k;
    }
    return 'ok';
  }

  #pills(): number {
    const w = this.profile.pillsPerDose.weights;
    const entries = Object.entries(w);
    let total = 0;
    for (const [, x] of entries) total += x;
    let u = this.#rng.next() * total;
    for (const [k, x] of entries) {
      u -= x;
      if (u < 0) return Number(k);
    }
    return Number(entries[entries.length - 1]![0]);
  }

  /** The citizen's intent for a dose, with its intake time placed so that their first act comes shortly. */
  #planDose(doseId: string, slot: number, label: string, printed: number, packing: Packing): { dose: Dose; intakeAtMs: number } {
    const r = this.#rng;
    const c = this.profile.citizen;
    const s = this.scale;
    const t = DEFAULT_TIMING;
    const forget = r.chance(c.forgetRate);
    const offsets: number[] = [];
    if (!forget) {
      // Before the early window: the robot must show "too early" and do nothing.
      if (r.chance(c.tooEarlyPressRate ?? 0)) offsets.push(-(t.earlyMin + Math.max(r.between(1, 30), this.#pressLagMs / s / MIN)) * MIN);
      if (r.chance(c.overduePressRate ?? 0)) offsets.push(r.between(t.overdueAfterMin, t.closeAfterMin - 3) * MIN);
      else if (r.chance(c.earlyPressRate)) offsets.push(-r.between(1, t.earlyMin - 1) * MIN);
      else offsets.push(r.between(c.pressDelayMin.min, c.pressDelayMin.max) * MIN);
    }
    const first = offsets.length > 0 ? Math.min(...offsets) : 0;
    const now = this.#clock.now();
    const intakeAtMs = Math.round(now + (LEAD_MS + r.between(1000, 5000)) * s - first * s);
    const pressAtMs = offsets.map((o) => Math.round(intakeAtMs + o * s)).sort((a, b) => a - b);
    const liftDelayMs = r.between(c.takeCupDelaySec.min, c.takeCupDelaySec.max) * 1000 * s;
    let cupAway: CitizenPlan['cupAway'];
    if (!forget && r.chance(c.cupAwayRate ?? 0)) {
      // Before the press (the robot must say "no cup") or just after it, while the carousel turns (a RELEASE refused).
      const atMs = Math.max(now + 15_000 * s, pressAtMs[0]! + r.between(-60_000, 3_000) * s);
      cupAway = { atMs, backAtMs: atMs + r.between(5_000, 180_000) * s };
    }
    const windows = windowsOf(intakeAtMs, this.#timing);
    const drawn: CitizenPlan = { forget, pressAtMs, liftDelayMs, placeBackMs: r.between(2000, 10_000) * s, cupAway };
    const plan = this.#aim ? this.#aim.plan(drawn, windows) : drawn;
    const host = this.profile.host;
    const inWindow = plan.pressAtMs.find((x) => x >= intakeAtMs - t.earlyMin * MIN * s);
    const crash = this.world.crashes && inWindow !== undefined && r.chance((host?.crashRate ?? 0) + (host?.powerCutRate ?? 0));
    const powerCut = crash && r.chance((host?.powerCutRate ?? 0) / ((host?.crashRate ?? 0) + (host?.powerCutRate ?? 0)));
    const packedPills = packedOf(printed, packing);
    return {
      intakeAtMs,
      dose: {
        prescription: { doseId, slot, label, printedPills: printed, packing, packedPills, windows },
        intent: { forget, liftDelayMs },
        plan,
        crashAtMs: crash ? inWindow! + r.between(0, this.world.crashWindowMs) : null,
        powerCut,
      },
    };
  }

  #loadRoll(): void {
    const h = this.#host!;
    const n = this.world.hw.slotCount;
    const rollId = `R${this.spec.index}-${++this.#rolls}`;
    const far = (this.#rollFarMs = this.#clock.now() + 365 * 24 * 3600_000);
    const printed = Array.from({ length: n }, () => this.#pills());
    const packing = printed.map(() => this.#packing());
    const pouches: ScheduledPouch[] = printed.map((pills, i) => ({
      rollId, position: i + 1, slot: i, label: pouchLabel(rollId, i + 1), intakeAtMs: far + i * 6 * 3600_000, pillCount: pills,
    }));
    // The first dose's time is known now; the others are placed when their turn comes.
    const first = this.#planDose('', 0, pouches[0]!.label, printed[0]!, packing[0]!);
    pouches[0]!.intakeAtMs = first.intakeAtMs;
    // A new roll: the ledger's per-slot counts start over with the new pouches (the light keeps its mode).
    const ledger = this.#sim.ledger;
    ledger.clear();
    ledger.noteSignal(this.#clock.now(), this.#sim.status().signal);
    this.#sim.loadPouches(pouches.map((p, i) => ({ slot: p.slot, label: p.label, pills: packedOf(p.pillCount, packing[i]!) })));
    h.controller.loadSchedule({ rollId, citizenId: 'C1', pouches });
    for (const p of packing) if (p !== 'ok') this.#tally.world.packingErrors[p] = (this.#tally.world.packingErrors[p] ?? 0) + 1;
    const rows = h.store.remainingPouches();
    this.#roll = pouches.map((p) => rows.find((r) => r.slot === p.slot)!.doseId);
    this.#packed = new Map(pouches.map((p, i) => [this.#roll[i]!, { slot: p.slot, label: p.label, printed: p.pillCount, packing: packing[i]! }]));
    first.dose.prescription.doseId = this.#roll[0]!;
    this.#doses = new Map([[this.#roll[0]!, first.dose]]);
    this.#next = 0;
  }

  #packed = new Map<string, { slot: number; label: string; printed: number; packing: Packing }>();

  /** The next dose of the roll is placed in time as the one before ends, before the controller picks it up. */
  #placeNext(doseId: string): boolean {
    const idx = this.#roll.indexOf(doseId);
    const nextId = idx >= 0 ? this.#roll[idx + 1] : undefined;
    if (!nextId || this.#doses.has(nextId)) return false;
    if (this.#drawCare(nextId)) return true;
    const k = this.#packed.get(nextId)!;
    const planned = this.#planDose(nextId, k.slot, k.label, k.printed, k.packing);
    this.#doses.set(nextId, planned.dose);
    this.#retime?.run(planned.intakeAtMs, nextId);
    return true;
  }

  #onOutcome(o: DosingOutcome): void {
    const list = this.#outcomes.get(o.doseId) ?? [];
    list.push(o);
    this.#outcomes.set(o.doseId, list);
    this.#wake?.();
    this.#placeNext(o.doseId);
  }

  // ------------------------------------------------------------ one dose

  #ended(doseId: string, bootsBefore: number): boolean {
    if (this.#outcomes.has(doseId)) return true;
    // A crash may swallow the announcement of a dose the store had already closed (read only after a crash: it costs a query).
    return this.#boots > bootsBefore && this.#host !== undefined && this.#host.store.dose(doseId)?.finalAtMs != null;
  }

  /** The citizen's intent for the dose takes effect, and the crash it may hold is armed. */
  #begin(doseId: string): void {
    const dose = this.#doses.get(doseId);
    if (!dose || this.#begun === doseId) return;
    this.#begun = doseId;
    this.#citizen.expect(dose.prescription.windows, dose.plan);
    if (dose.plan.cupAway) bump((this.#tally.world.events ??= {}), 'cupAway');
    this.#aim?.begin(dose.prescription.windows);
    this.#clock.clearTimeout(this.#crashTimer);
    this.#crashTimer = undefined;
    this.#crashOnTake = undefined;
    if (dose.crashAtMs === null) return;
    const inWindow = dose.plan.pressAtMs.find((x) => x >= dose.prescription.windows.earlyAtMs);
    // On the wall clock the crash waits for the robot to take the press (see PTY_CRASH_WINDOW_MS).
    if (!(this.#clock instanceof ManualClock) && inWindow !== undefined) this.#crashOnTake = { doseId, afterMs: dose.crashAtMs - inWindow, powerCut: dose.powerCut };
    else this.#crashTimer = this.#clock.setTimeout(() => this.#crash(dose.powerCut), dose.crashAtMs - this.#clock.now());
  }

  /** A wall-clock crash waiting for the robot to take the dose's press: then it falls `afterMs` later. */
  #crashOnTake: { doseId: string; afterMs: number; powerCut: boolean } | undefined;

  #armCrashOnTake(s: ControllerStatus): void {
    const c = this.#crashOnTake;
    if (!c || s.current?.doseId !== c.doseId || (s.phase !== 'dispensing' && s.phase !== 'presented')) return;
    this.#crashOnTake = undefined;
    this.#crashTimer = this.#clock.setTimeout(() => this.#crash(c.powerCut), c.afterMs);
  }

  async #dose(doseId: string): Promise<void> {
    const dose = this.#doses.get(doseId);
    if (!dose) throw new Error(`episode ${this.spec.index}: dose ${doseId} has no plan`);
    await this.#beginOnTime(doseId);
    const boots = this.#boots;
    for (;;) {
      // The wait stops early when the staff are to act on the press being checked (aim.careAtClaim): virtual time stands
      // still while they do, so their action commits before the MCU's answer reaches the host.
      this.#waitingFor = doseId;
      await this.#need(() => this.#careAtClaim !== undefined || this.#ended(doseId, boots), this.#limitMs, doseId, 'the dose never ended');
      this.#waitingFor = undefined;
      const atClaim = this.#careAtClaim;
      this.#careAtClaim = undefined;
      if (atClaim === undefined) break;
      if (await this.#careAtPress(doseId, dose)) return;
    }
    this.#clock.clearTimeout(this.#crashTimer);
    this.#crashOnTake = undefined;
    this.#aim?.end();
    this.#citizen.end();
    await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, doseId, 'the host never came back');
    if (!this.#outcomes.has(doseId) && this.#placeNext(doseId)) {
      // The crashed host never announced the end, so the next dose was not placed before the new host read it: boot once more.
      this.#crash(false);
      await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, doseId, 'the host never came back');
    }
    // What the robot shows at a dose's end (its error light) takes a moment to reach the MCU: the referee looks once it has.
    await this.#settle();
    // A dose not taken may have left pills in the cup (some the sensor never saw): the care staff empty it before the next dose.
    await this.#emptyCup(this.#rng);
    // The ledger up to here is this dose's; from here on the next dose's, whose citizen acts from now on while the alarm
    // centre catches up (delivery may take virtual minutes under network faults, and the world goes on meanwhile).
    const endMs = this.#clock.now();
    const next = this.#roll[this.#roll.indexOf(doseId) + 1];
    if (next && !this.#staffToAct(next)) await this.#beginOnTime(next);
    await this.#deliver(doseId);
    this.#judge(doseId, dose, endMs);
  }

  /**
   * Waits for what the robot shows at a dose's end to reach the MCU. Virtual time: SETTLE_MS (a lost SIGNAL is sent
   * again after a second; an MCU may be silent 5 s). Wall clock: WALL_SETTLE_MS, then until the light shows what the
   * robot's store says it should (a loaded machine's event loop lags by a hundred milliseconds and more), at most
   * SETTLE_MS. This paces the run only: the referee still judges what the ledger shows.
   */
  async #settle(): Promise<void> {
    await this.#sleep(Math.max(SETTLE_MS * this.scale, WALL_SETTLE_MS));
    if (this.#clock instanceof ManualClock) return;
    await this.#wait(() => {
      const h = this.#host;
      return h === undefined || this.#sim.status().signal === (h.store.getMeta('signal_mode') || 'off');
    }, SETTLE_MS);
  }

  /**
   * Lets the robot's delivery loop empty its outbox into the centre before the dose is judged: requests under way
   * finish (they need the event loop), and when none is, virtual time runs on to the loop's next attempt (its backoff,
   * its poll, a hung request's timeout). A centre restart may fall here. On the wall clock the loop runs by itself:
   * the episode waits until the outbox is empty (see #deliverWall).
   */
  async #deliver(doseId: string): Promise<void> {
    const centre = this.#centre;
    const clock = this.#clock;
    if (!centre) return;
    centre.maybeRestart();
    if (!(clock instanceof ManualClock)) return this.#deliverWall(doseId, centre);
    const busy = () => centre.inflight > centre.hung;
    const wall = new SystemClock();
    for (let i = 0; i < 100_000; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      // A request being handled waits on real I/O (the centre's group commit fsyncs): wait for it in real time.
      for (const end = wall.now() + REQUEST_LIMIT_MS; busy();) {
        if (wall.now() > end) throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: a request to the alarm centre took over ${REQUEST_LIMIT_MS / 1000} s`);
        await new Promise<void>((resolve) => wall.setTimeout(resolve, 1));
      }
      const h = this.#host;
      // Done when nothing waits (a heartbeat may still hang until its timeout: it carries no alarm).
      if (h && outboxDepth(h.store.db) === 0) return;
      // Virtual time runs until the loop sends something (or a hung request is given up): what follows an answer, even
      // one given at once, runs only once this yields to the event loop.
      const sent = this.#sent;
      const hung = centre.hung;
      if (!clock.runUntil(() => this.#sent !== sent || centre.hung !== hung, DELIVERY_LIMIT_MS)) break;
    }
    const depth = this.#host ? outboxDepth(this.#host.store.db) : 'no host';
    throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: the alarm outbox never drained into the centre (${depth} events waiting, ${centre.inflight} requests under way, ${centre.hung} hung)`);
  }

  /**
   * The wall clock's wait for the outbox: the robot's own loop (its timings shrunk, PTY_DELIVERY) retries lost and
   * refused requests and gives up on hanging ones by itself; a host that crashed meanwhile boots and its new loop
   * sends what the store kept. Bounded: an outbox still not empty after DELIVERY_WALL_LIMIT_MS is an error that says
   * what waits.
   */
  async #deliverWall(doseId: string, centre: SoakCentre): Promise<void> {
    const drained = () => {
      const h = this.#host;
      return h !== undefined && outboxDepth(h.store.db) === 0 && centre.inflight === centre.hung;
    };
    if (await this.#wait(drained, DELIVERY_WALL_LIMIT_MS)) return;
    const depth = this.#host ? `${outboxDepth(this.#host.store.db)} events waiting` : 'the host down';
    throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: the alarm outbox did not drain into the centre within ${DELIVERY_WALL_LIMIT_MS / 1000} s of wall time (${depth}, ${centre.inflight} requests under way, ${centre.hung} hung, ${this.#sent} sent so far)`);
  }

  #judge(doseId: string, dose: Dose, toMs: number): void {
    const ledger = this.#sim.ledger;
    const outcomes = this.#outcomes.get(doseId) ?? [];
    // What the centre holds, as an operator sees it (the robot's own queue only before the centre opened: never in a run).
    const alarms = this.#centre ? this.#centre.alarmsFor(doseId) : this.#alarms!.all(doseId).map((r) => r.type);
    const j = judgeDose({
      prescription: dose.prescription, intent: dose.intent, ledger, fromMs: this.#periodStartMs, toMs, alarms,
      finals: Math.max(outcomes.length, 1), robotReason: outcomes[0]?.reason ?? null, pressMarginMs: this.#pressMarginMs,
    });
    ledger.forgetBefore(toMs);
    this.#periodStartMs = toMs;
    const t = this.#tally;
    const dosing = this.spec.firstDosing + t.dosings;
    this.#violations(j.violations);
    if (j.cls === 'missed') {
      t.missed++;
      bump(t.missedReasons, j.reason ?? 'unknown');
    } else this.#countDosing(j.cls, j.reason, j.robotFailure, dose.prescription.printedPills);
    if (j.cls === 'red' || j.violations.length > 0) this.#failing();
    this.opts.onDosing?.({ dosing, doseId, outcome: outcomes[0], soakClass: j.cls, reason: j.reason, robotFailure: j.robotFailure, alarms });
  }

  #countDosing(cls: 'correct' | 'green' | 'yellow' | 'red', reason: string | null, robotFailure: boolean, printedPills: number): void {
    const t = this.#tally;
    t.dosings++;
    t.pills += printedPills;
    t.outcomes[cls]++;
    if (cls === 'yellow') bump(t.yellowReasons, reason ?? 'unknown');
    if (cls === 'red') bump(t.redReasons, reason ?? 'unknown');
    if (robotFailure) t.robotFailures[cls === 'yellow' ? 'registered' : 'unregistered']++;
    if (t.dosings % SAMPLE_EVERY === 0 || t.dosings === this.spec.dosings) {
      t.samples.push([t.dosings, t.outcomes.correct, t.outcomes.green, t.outcomes.yellow, t.outcomes.red]);
    }
  }

  #violations(list: readonly { invariant: number; detail: string }[]): void {
    const t = this.#tally;
    const dosing = this.spec.firstDosing + t.dosings;
    for (const v of list) t.invariantViolations.push({ invariant: v.invariant, dosing, detail: v.detail, episode: this.spec.index });
  }

  #failing(): void {
    const t = this.#tally;
    if (!t.failingEpisodes.includes(this.spec.index)) t.failingEpisodes.push(this.spec.index);
  }

  /** The care staff empty a cup left with pills in it (or bring one back) before the next dose. */
  async #emptyCup(rng: Random): Promise<void> {
    const sim = this.#sim;
    if (staffTakeCup(sim)) {
      await this.#sleep(rng.between(2000, 10_000) * this.scale);
      sim.placeCup();
    }
  }

  // ------------------------------------------------------------ the care staff

  /**
   * As dose `firstId` is placed, the staff may take it and the next ones out of dispensing (a pause, a travel pack, a
   * withdrawal): the action is drawn, its doses planned (placed minutes apart) and the first placed in time; the
   * staff act when the episode comes to it. Draws nothing without care rates in the profile.
   */
  #drawCare(firstId: string): boolean {
    const c = this.profile.care;
    // On the wall clock (the pty transport) the staff's action would race dose times scaled to milliseconds: care runs
    // on virtual time only.
    if (!c || !(this.#clock instanceof ManualClock)) return false;
    const r = this.#careRng;
    const u = r.next();
    const action: CareAction | undefined = u < c.pauseRate ? 'pause'
      : u < c.pauseRate + c.travelRate ? 'travel'
      : u < c.pauseRate + c.travelRate + c.withdrawRate ? (r.chance(c.withdrawFromTimeRate) ? 'withdrawFromTime' : 'withdrawByLabel')
      : undefined;
    if (!action) return false;
    const idx = this.#roll.indexOf(firstId);
    const left = this.#roll.length - idx;
    const span = (x: { min: number; max: number }) => Math.min(left, Math.floor(r.between(x.min, x.max + 1 - 1e-9)));
    const n = action === 'pause' ? span(c.pauseDoses) : action === 'travel' ? span(c.travelDoses) : action === 'withdrawByLabel' ? span(c.withdrawDoses) : left;
    const s = this.scale;
    const t = DEFAULT_TIMING;
    const now = this.#clock.now();
    // Before the first dose's window opens (the robot idle), or with it open: a pause before the dose is due (a pause
    // takes only doses still to come), travel and withdrawal while the robot reminds of it.
    const open = r.chance(c.openWindowRate);
    let actAtMs: number;
    let firstAtMs: number;
    if (!open) {
      actAtMs = now + LEAD_MS * s;
      firstAtMs = actAtMs + (t.earlyMin + r.between(1, 10)) * MIN * s;
    } else if (action === 'pause') {
      actAtMs = now + LEAD_MS * s;
      firstAtMs = actAtMs + r.between(1, t.earlyMin - 1) * MIN * s;
    } else {
      firstAtMs = now + (LEAD_MS + r.between(1000, 5000)) * s;
      actAtMs = firstAtMs + r.between(1, 2 * t.reminderEveryMin) * MIN * s;
    }
    const group: CareGroup = { action, kind: CARE_CLASS_OF[action], doses: this.#roll.slice(idx, idx + n), actAtMs: Math.round(actAtMs), actedAtMs: null, resumeAfter: null, pause: null };
    if (action === 'pause' && n >= 2 && r.chance(c.resumeEarlyRate)) group.resumeAfter = group.doses[r.int(n - 1)]!;
    let atMs = Math.round(firstAtMs);
    for (const [j, doseId] of group.doses.entries()) {
      const k = this.#packed.get(doseId)!;
      // The citizen knows the dose is not theirs to take here, but may press all the same, after the staff acted.
      const confused = r.chance(c.confusedPressRate);
      const pressAtMs = confused ? [Math.round(Math.max(atMs, group.actAtMs) + r.between(5_000, 60_000) * s)] : [];
      const liftDelayMs = r.between(this.profile.citizen.takeCupDelaySec.min, this.profile.citizen.takeCupDelaySec.max) * 1000 * s;
      const plan: CitizenPlan = { forget: !confused, pressAtMs, liftDelayMs, placeBackMs: r.between(2000, 10_000) * s };
      const host = this.profile.host;
      const crashes = (host?.crashRate ?? 0) + (host?.powerCutRate ?? 0);
      // The host may die around the staff's action (before it, or just after it committed).
      const crash = j === 0 && this.world.crashes && r.chance(crashes);
      this.#doses.set(doseId, {
        prescription: { doseId, slot: k.slot, label: k.label, printedPills: k.printed, packing: k.packing, packedPills: packedOf(k.printed, k.packing), windows: windowsOf(atMs, this.#timing) },
        intent: { forget: !confused, liftDelayMs },
        plan,
        crashAtMs: crash ? Math.round(group.actAtMs + r.between(-30_000, 60_000) * s) : null,
        powerCut: crash && r.chance((host?.powerCutRate ?? 0) / crashes),
      });
      this.#careOf.set(doseId, group);
      // Doses a pause ended early gives back are far enough apart that each has its window when it comes back (a window
      // closes where the next dose's early window opens).
      const tail = group.resumeAfter !== null && j >= group.doses.indexOf(group.resumeAfter);
      atMs += Math.round((tail ? (t.earlyMin + 5) * MIN : confused ? CARE_PRESSED_GAP_MS : CARE_GAP_MS) * s);
    }
    // Only the first is placed now: the others keep their place a year ahead until the staff act.
    this.#retime?.run(this.#doses.get(firstId)!.prescription.windows.dueAtMs, firstId);
    return true;
  }

  /** The first dose of a care action the staff have yet to take: its citizen and crash wait for the staff's time. */
  #staffToAct(doseId: string): boolean {
    const g = this.#careOf.get(doseId);
    return g !== undefined && g.actedAtMs === null && g.doses[0] === doseId;
  }

  /**
   * The staff come when they planned, counted from the end of the dose before; when the alarm centre took the world
   * past that (delivery under network faults may take virtual minutes after the dose before), the action and its doses
   * move later together, before the citizen or the robot could act on the old times (a pause must still cover its
   * doses, a confused press still come after the staff acted).
   */
  async #onTime(g: CareGroup): Promise<void> {
    if (this.#clock.now() <= g.actAtMs) return;
    await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, g.doses[0]!, 'the host never came back before the staff acted');
    const delta = Math.round(this.#clock.now() + LEAD_MS * this.scale - g.actAtMs);
    g.actAtMs += delta;
    this.#moveLater(g.doses, delta);
  }

  /**
   * A dose placed as the one before ended, while the alarm centre took the world on past the start of its plan
   * (delivery under network faults may take virtual minutes after the dose before is judged): before its citizen or
   * its crash could act on times already gone (all at once, a press and a power cut in the same instant), the dose,
   * its windows and its plan move later together. Only a dose the robot has not started on: it has only reminded.
   */
  async #beginOnTime(doseId: string): Promise<void> {
    const dose = this.#doses.get(doseId);
    if (dose && this.#begun !== doseId) await this.#keepPace(doseId, dose);
    this.#begin(doseId);
  }

  async #keepPace(doseId: string, dose: Dose): Promise<void> {
    const p = dose.plan;
    const firstAtMs = Math.min(p.pressAtMs[0] ?? Infinity, p.cupAway?.atMs ?? Infinity, dose.crashAtMs ?? Infinity);
    if (!Number.isFinite(firstAtMs) || this.#clock.now() <= firstAtMs) return;
    await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, doseId, 'the host never came back before the dose began');
    if (this.#host!.store.dose(doseId)?.state !== 'scheduled') return;
    this.#moveLater([doseId], Math.round(this.#clock.now() + LEAD_MS * this.scale - firstAtMs));
    bump((this.#tally.world.events ??= {}), 'doseMovedLater');
  }

  /** Doses (the first of them placed in the robot's store) move `delta` later: windows, the citizen's plan and the crash. */
  #moveLater(doseIds: readonly string[], delta: number): void {
    for (const doseId of doseIds) {
      const d = this.#doses.get(doseId)!;
      d.prescription = { ...d.prescription, windows: windowsOf(d.prescription.windows.dueAtMs + delta, this.#timing) };
      const away = d.plan.cupAway;
      d.plan = { ...d.plan, pressAtMs: d.plan.pressAtMs.map((t) => t + delta), cupAway: away && { atMs: away.atMs + delta, backAtMs: away.backAtMs + delta } };
      if (d.crashAtMs !== null) d.crashAtMs += delta;
    }
    const first = doseIds[0]!;
    this.#retime!.run(this.#doses.get(first)!.prescription.windows.dueAtMs, first);
    this.#host!.controller.scheduleChanged();
  }

  /** The staff act through the robot's own care actions (the pharmacy screen's): the store, then the controller. */
  async #careAct(g: CareGroup): Promise<void> {
    await this.#sleep(Math.max(0, g.actAtMs - this.#clock.now()));
    await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, g.doses[0]!, 'the host never came back before the staff acted');
    const h = this.#host!;
    const care = await this.#careBackend(h);
    const now = this.#clock.now();
    // The other doses of the action are placed in time now, one after the other, right before the staff act (in the
    // same turn of the event loop: the controller never sees them as doses to give).
    for (const doseId of g.doses.slice(1)) this.#retime!.run(this.#doses.get(doseId)!.prescription.windows.dueAtMs, doseId);
    const dueOf = (doseId: string) => this.#doses.get(doseId)!.prescription.windows.dueAtMs;
    let r: CareResult;
    const counts = (this.#tally.care ??= emptyCare());
    if (g.action === 'pause') {
      const untilMs = dueOf(g.doses.at(-1)!) + Math.round(PAUSE_TAIL_MS * this.scale);
      r = care.pause({ fromMs: now, untilMs, reason: 'hospital' }, CARE_STAFF);
      g.pause = this.#pauses.push({ fromMs: now, untilMs, endedEarly: false }) - 1;
    } else if (g.action === 'travel') r = care.travel(g.doses.length, CARE_STAFF);
    else if (g.action === 'withdrawFromTime') r = care.withdraw({ fromMs: dueOf(g.doses[0]!) }, CARE_STAFF);
    else r = care.withdraw({ doseIds: [...g.doses] }, CARE_STAFF);
    if (!r.ok) throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${g.doses[0]}: the staff's ${g.action} was refused (${r.code}: ${r.message})`);
    g.actedAtMs = now;
    counts.actions[g.action]++;
    for (const doseId of g.doses) this.#careRoll.push({ doseId, slot: this.#doses.get(doseId)!.prescription.slot, kind: g.kind, flagged: false });
  }

  async #careBackend(h: HostProcess): Promise<CareBackend> {
    const care = (await h.robot.backend()).care;
    if (!care) throw new Error('the robot offers no care actions');
    return care;
  }

  /** The staff end a pause early (the citizen is home): the doses of it still to come are given again. */
  async #resume(g: CareGroup, afterId: string): Promise<void> {
    const care = await this.#careBackend(this.#host!);
    const r = care.endPause(CARE_STAFF);
    if (!r.ok) throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${afterId}: the staff's resume was refused (${r.code}: ${r.message})`);
    const now = this.#clock.now();
    this.#pauses[g.pause!]!.endedEarly = true;
    this.#tally.care!.actions.resumeEarly++;
    // Those still to come (the store's rule, from the referee's own times) are ordinary doses again: back to their place
    // a year ahead, each placed in time when its turn comes.
    const rest = g.doses.slice(g.doses.indexOf(afterId) + 1);
    const resumed = new Set(rest.filter((doseId) => this.#doses.get(doseId)!.prescription.windows.dueAtMs > now));
    for (const doseId of resumed) {
      this.#careOf.delete(doseId);
      this.#doses.delete(doseId);
      this.#retime!.run(this.#rollFarMs + this.#roll.indexOf(doseId) * 6 * 3600_000, doseId);
    }
    g.doses = g.doses.filter((doseId) => !resumed.has(doseId));
    this.#careRoll = this.#careRoll.filter((d) => !resumed.has(d.doseId));
  }

  /** A dose out of dispensing: the staff act (at the first of their action), the episode watches it pass, the referee judges it. */
  async #careDose(doseId: string): Promise<void> {
    const g = this.#careOf.get(doseId)!;
    const dose = this.#doses.get(doseId)!;
    if (g.actedAtMs === null) await this.#onTime(g);
    this.#begin(doseId);
    if (g.actedAtMs === null) await this.#careAct(g);
    // Its time passes (and a confused citizen's press, with whatever a wrong robot would make of it).
    const lastPress = dose.plan.pressAtMs.at(-1);
    const untilMs = Math.max(dose.prescription.windows.dueAtMs, lastPress === undefined ? 0 : lastPress + CARE_WATCH_MS * this.scale);
    await this.#careDoseEnds(doseId, dose, g, untilMs);
  }

  /**
   * The staff's action was aimed at the exchange between a press and the claim (aim.careAtClaim): the robot has asked
   * the MCU's STATUS for the dose the citizen pressed for, and its answer is on the wire. The staff take that very dose
   * out of dispensing now through the robot's care actions (the pharmacy screen's): released for travel, withdrawn by
   * label, or paused while it is not yet due. The robot must then refuse its own claim (no motion) and the dose is
   * judged as the staff's, never as a dosing. False when the dose was no longer waiting to be dispensed (nothing done).
   */
  async #careAtPress(doseId: string, dose: Dose): Promise<boolean> {
    const h = this.#host;
    if (!h || h.store.dose(doseId)?.state !== 'scheduled') return false;
    const care = await this.#careBackend(h);
    // Virtual time stood still while the screens' backend was fetched: the robot is where it was.
    if (this.#host !== h || h.store.dose(doseId)?.state !== 'scheduled') return false;
    const now = this.#clock.now();
    const r = this.#staffRng;
    const dueAtMs = dose.prescription.windows.dueAtMs;
    // A pause takes only doses still to come: the dose pressed for in its early window, before it is due.
    const actions: CareAction[] = ['travel', 'withdrawByLabel', ...(dueAtMs > now && !h.store.activePause() ? ['pause' as const] : [])];
    const action = actions[r.int(actions.length)]!;
    const g: CareGroup = { action, kind: CARE_CLASS_OF[action], doses: [doseId], actAtMs: now, actedAtMs: now, resumeAfter: null, pause: null, atClaim: true };
    let res: CareResult;
    if (action === 'pause') {
      const untilMs = dueAtMs + Math.round(PAUSE_TAIL_MS * this.scale);
      res = care.pause({ fromMs: now, untilMs, reason: 'hospital' }, CARE_STAFF);
      if (res.ok) g.pause = this.#pauses.push({ fromMs: now, untilMs, endedEarly: false }) - 1;
    } else if (action === 'travel') res = care.travel(1, CARE_STAFF);
    else res = care.withdraw({ doseIds: [doseId] }, CARE_STAFF);
    const state = { suspended: 'suspended', travel: 'travel', withdrawn: 'withdrawn' }[g.kind];
    if (!res.ok || res.doses.length !== 1 || h.store.dose(doseId)?.state !== state) {
      throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: the staff's ${action} as the press was checked did not take that dose (${res.ok ? `${res.doses.length} doses moved` : `${res.code}: ${res.message}`})`);
    }
    this.#careOf.set(doseId, g);
    (this.#tally.care ??= emptyCare()).actions[action]++;
    bump((this.#tally.world.events ??= {}), 'careAtClaim');
    this.#careRoll.push({ doseId, slot: dose.prescription.slot, kind: g.kind, flagged: false });
    // The events aimed at this dose's dispensing are moot now (its crash, drawn with the press, may still come).
    this.#aim?.end();
    // The robot has the watch's time to let go of the press (a held dose retries, and must find the claim refused too),
    // and the dose's time passes (a pause ends after it).
    await this.#careDoseEnds(doseId, dose, g, Math.max(dueAtMs, now + CARE_WATCH_MS * this.scale));
    return true;
  }

  /**
   * Whether the robot is checking a press for the dose the episode waits on (its machine asked the MCU's STATUS before
   * claiming the dose: the first check after a press, or a held dose's retry), so the staff's action lands in between.
   */
  #checkingPress(): boolean {
    const doseId = this.#waitingFor;
    const h = this.#host;
    if (doseId === undefined || h === undefined || this.#careAtClaim !== undefined || this.#careOf.has(doseId)) return false;
    const s = h.controller.status();
    // Dispensing, before any motion, with no notice (held shows one): checkingCup (or the CLEAR before it); with the cup
    // in place the answer lets the robot go on to claim the dose (without it, the dose is held and the claim waits).
    return s.phase === 'dispensing' && s.step === 'checking' && s.notice === null && s.current?.doseId === doseId && this.#sim.cupPresent;
  }

  /** A dose out of dispensing: its time passes until `untilMs`, the next dose is placed, the referee judges it. */
  async #careDoseEnds(doseId: string, dose: Dose, g: CareGroup, untilMs: number): Promise<void> {
    await this.#sleep(Math.max(0, untilMs - this.#clock.now()));
    await this.#need(() => this.#host !== undefined && this.#status?.reconciled === true, this.#limitMs, doseId, 'the host never came back');
    if (g.doses[0] === doseId) this.#clock.clearTimeout(this.#crashTimer);
    this.#citizen.end();
    await this.#sleep(Math.max(SETTLE_MS * this.scale, WALL_SETTLE_MS));
    await this.#emptyCup(this.#careRng);
    if (g.resumeAfter === doseId) await this.#resume(g, doseId);
    const nextId = this.#roll[this.#roll.indexOf(doseId) + 1];
    // The action's last dose: the next dose of the roll is placed in time. The controller already waits for it (where
    // it was, a year ahead): it is told the schedule changed, as if the dose had always been due then.
    if (nextId !== undefined && this.#careOf.get(nextId) !== g && this.#placeNext(doseId)) this.#host!.controller.scheduleChanged();
    const endMs = this.#clock.now();
    if (nextId !== undefined && !this.#staffToAct(nextId)) await this.#beginOnTime(nextId);
    await this.#deliver(doseId);
    this.#judgeCare(doseId, dose, g, endMs);
  }

  #judgeCare(doseId: string, dose: Dose, g: CareGroup, toMs: number): void {
    const ledger = this.#sim.ledger;
    const outcomes = this.#outcomes.get(doseId) ?? [];
    const alarms = this.#centre ? this.#centre.alarmsFor(doseId) : this.#alarms!.all(doseId).map((r) => r.type);
    const j = judgeCareDose({
      prescription: dose.prescription, kind: g.kind, actedAtMs: g.actedAtMs!, settleMs: Math.max(SETTLE_MS * this.scale, WALL_SETTLE_MS),
      ledger, fromMs: this.#periodStartMs, toMs, alarms, finals: outcomes.length,
    });
    ledger.forgetBefore(toMs);
    this.#periodStartMs = toMs;
    const dosing = this.spec.firstDosing + this.#tally.dosings;
    this.#violations(j.violations);
    if (j.cls === 'red') this.#countDosing('red', j.reason, false, dose.prescription.printedPills);
    else this.#tally.care!.doses[j.cls]++;
    if (j.cls === 'red' || j.violations.length > 0) {
      this.#failing();
      const d = this.#careRoll.find((x) => x.doseId === doseId);
      if (d) d.flagged = true;
    }
    this.opts.onDosing?.({ dosing, doseId, outcome: outcomes[0], soakClass: j.cls, reason: j.reason, robotFailure: false, ...(g.atClaim ? { careAtClaim: true as const } : {}) });
  }

  /**
   * When a roll ends (and the episode): what a wrong robot did with doses out of dispensing after they were judged — a
   * cut of their pouch, an alarm for them at the centre — and whether the centre silenced the robot for exactly each
   * pause (one `care_paused` each, the silence ended early when the staff ended the pause).
   */
  async #auditCare(): Promise<void> {
    if (this.#careRoll.length === 0 && this.#pausesAudited === this.#pauses.length) return;
    await this.#deliver('(care audit)');
    const ledger = this.#sim.ledger;
    const late: { invariant: number; detail: string }[] = [];
    for (const d of this.#careRoll) {
      if (d.flagged) continue;
      const alarms = (this.#centre ? this.#centre.alarmsFor(d.doseId) : this.#alarms!.all(d.doseId).map((r) => r.type)).filter((a) => (FINAL_ALARMS as readonly string[]).includes(a));
      if (alarms.length > 0) late.push({ invariant: 5, detail: `dose ${d.doseId} (${d.kind}): ${alarms.join(', ')} at the centre for a dose out of dispensing` });
      if (ledger.cutCount(d.slot) > 0) late.push({ invariant: CARE_INVARIANT, detail: `dose ${d.doseId} (${d.kind}): its pouch was cut at the robot` });
    }
    this.#careRoll = [];
    const centre = this.#centre;
    if (centre) {
      const silences = centre.pauseSilences();
      for (let i = this.#pausesAudited; i < this.#pauses.length; i++) {
        const p = this.#pauses[i]!;
        const s = silences[i];
        if (!s) late.push({ invariant: 5, detail: `pause ${i + 1} (${p.fromMs}–${p.untilMs}): the centre never silenced the robot` });
        else if (s.startsAtMs !== p.fromMs || s.endsAtMs !== p.untilMs || s.endedEarly !== p.endedEarly) {
          late.push({ invariant: 5, detail: `pause ${i + 1}: silenced ${s.startsAtMs}–${s.endsAtMs}${s.endedEarly ? ' (ended early)' : ''}, the pause ${p.fromMs}–${p.untilMs}${p.endedEarly ? ' (ended early)' : ''}` });
        }
      }
      if (silences.length > this.#pauses.length) late.push({ invariant: 5, detail: `${silences.length} pause silences at the centre, ${this.#pauses.length} pauses` });
    }
    this.#pausesAudited = this.#pauses.length;
    this.#violations(late);
    if (late.length > 0) this.#failing();
  }

  // ------------------------------------------------------------ time

  /** Runs the clock until `done`: virtual time jumps from event to event; on the wall clock, wakes on the controller's news. */
  async #wait(done: () => boolean, limitMs: number): Promise<boolean> {
    const clock = this.#clock;
    if (clock instanceof ManualClock) return clock.runUntil(done, limitMs);
    const end = clock.now() + limitMs;
    while (!done()) {
      if (clock.now() >= end) return false;
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(() => resolve(), WALL_POLL_MS);
        this.#wake = () => {
          clock.clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return true;
  }

  async #need(done: () => boolean, limitMs: number, doseId: string, what: string): Promise<void> {
    if (await this.#wait(done, limitMs)) return;
    const s = this.#host?.controller.status();
    throw new Error(`episode ${this.spec.index} (seed ${this.spec.seed}), dose ${doseId}: ${what} (phase ${s?.phase}, step ${s?.step}, notice ${s?.notice}, link ${s?.link})`);
  }

  async #sleep(ms: number): Promise<void> {
    const clock = this.#clock;
    const until = clock.now() + ms;
    if (clock instanceof ManualClock) clock.runUntil(() => clock.now() >= until, ms + 1);
    else await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
  }
}

/** Thrown inside a dead host's step: nothing after it in that step runs. */
class HostGone extends Error {
  constructor() {
    super('the host went down between two commits');
  }
}

function packedOf(printed: number, packing: Packing): number {
  return packing === 'one_more' || packing === 'foreign' ? printed + 1 : packing === 'one_fewer' ? printed - 1 : packing === 'empty' ? 0 : printed;
}

function bump(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

// The simulated MCU: speaks the serial protocol over any Transport and drives the simulated carousel, cutter and sensors.
//
// RAM state (lost at every reset): boot id, tx seq, the window of the last 64 host
// seqs with their acks, unacked events, the latch, the signal mode, whether a HELLO
// came since power-up. Physical state (survives a reset): carousel, pouches, cup,
// and the non-volatile memory: the cut map, the last 64 motion command ids with their
// outcomes (one a reset stopped is kept as aborted), and the cup-lift counter. Wire faults live in this file's own receive
// and transmit paths, so they work over a pty as over the in-memory wire.

import pino, { type Logger } from 'pino';
import type { Clock, TimerHandle } from '../../protocol/src/clock.js';
import { SEQ_MODULO, decodeFrame, encodeFrame, nextSeq, type FrameKind } from '../../protocol/src/frame.js';
import {
  CATALOGUE_HASH,
  PROTOCOL_VERSION,
  decodeCommand,
  encodeAck,
  encodeEvent,
  encodeHeartbeat,
  type Command,
  type DeviceEvent,
} from '../../protocol/src/catalogue.js';
import type { Transport } from '../../protocol/src/transport.js';
import type { HardwareProfile } from '../../hardware/src/profile.js';
import { FaultSpecError, NOT_ANSWERING_MS, isFaultName, noFaults, type FaultName, type FaultRates } from './faults.js';
import { Ledger, type LedgerEntry, type Lifter } from './ledger.js';
import { Random } from './random.js';
import { Carousel } from './carousel.js';
import { Cup } from './cup.js';
import { cutPouch, makePouch, shakePouch, type Pouch } from './cutter.js';
import { readLabel } from './label-reader.js';
import { sensePills } from './pill-sensor.js';

export type SimPouch = { slot: number; label: string; pills: number };

type MotionName = 'ROTATE' | 'RELEASE' | 'SHAKE';
type MotionCommand = Extract<Command, { name: MotionName }>;
type OutcomeEvent = Extract<DeviceEvent, { name: 'ROTATED' | 'RELEASED' | 'SHAKEN' }>;
type IdRecord = { name: MotionName; slot: number; state: 'running' | 'done' | 'aborted'; outcome?: OutcomeEvent };
type Unacked = { seq: number; line: string; backoffMs: number; timer?: SimTimer };
type Motion = { id: string; name: MotionName; slot: number; leaseMs: number; timers: SimTimer[]; stick: boolean };

/**
 * The world's view of the MCU's inputs (the soak aims rare events at the moments that matter, as FoundationDB's
 * buggify does): `command` sees each new command as it arrives and may say the MCU resets right then (the line is lost
 * with its RAM), goes deaf (the notAnswering fault) from this line on or just after answering it, or, for a motion, that the motor driver trips as
 * it is energised (the driverFault fault) or, for a RELEASE, that a pill sticks in the pouch (the pillStuck fault);
 * `motion` sees each motion the MCU starts, with how long it will run.
 */
export type SimAimed = 'reset' | 'trip' | 'deaf' | 'deafAfter' | 'stick' | undefined;
export type SimWatcher = {
  command?(cmd: Command): SimAimed;
  /** `cutAtMs`: for a RELEASE, when the cutter opens the pouch (from the start). */
  motion?(m: { name: MotionName; id: string; slot: number; durationMs: number; cutAtMs?: number | undefined }): void;
};
/** The cup-lift counter wraps here (a 16-bit cell of non-volatile memory). */
const LIFTS_MODULO = 65_536;
/** A timer of the simulator's: the clock's handle, its place in the list of armed ones, and when it fires. */
type SimTimer = { handle: TimerHandle | undefined; index: number; atMs: number };

/**
 * A per-line wire fault's draws. By default a coin per line (the soak's exact mode); with `gaps`, the clean lines
 * before the next hit are drawn at once (a geometric draw: the same odds per line), so a driver that skips idle
 * heartbeats can see how many lines will pass clean and stop just before the one that will not.
 */
class LineDraw {
  #gap: number | undefined;
  #rate = -1;
  constructor(
    private readonly rng: Random,
    private readonly gaps: boolean,
  ) {}

  hit(p: number): boolean {
    if (!this.gaps) return this.rng.chance(p);
    if (p <= 0) return false;
    if (p >= 1) return true;
    const gap = this.#drawn(p);
    if (gap > 0) {
      this.#gap = gap - 1;
      return false;
    }
    this.#gap = undefined;
    return true;
  }

  /** Lines from here that pass clean at rate `p` (gaps only). */
  clean(p: number): number {
    if (p <= 0) return Infinity;
    if (p >= 1) return 0;
    return this.#drawn(p);
  }

  /** `n` lines passed clean (no more than clean(p)). */
  skip(n: number, p: number): void {
    if (p > 0 && p < 1) this.#gap = this.#drawn(p) - n;
  }

  #drawn(p: number): number {
    if (this.#gap === undefined || this.#rate !== p) {
      this.#rate = p;
      this.#gap = geometric(this.rng, p);
    }
    return this.#gap;
  }
}

/** Failures before the first success of a p-coin. */
function geometric(rng: Random, p: number): number {
  if (p >= 1) return 0;
  return Math.floor(Math.log(1 - rng.next()) / Math.log(1 - p));
}

/** What the simulator tells a heartbeat-coasting driver when it would send only heartbeats (see quietHeartbeat). */
export type QuietHeartbeat = {
  /** Its heartbeat timer and when it fires. */
  timer: TimerHandle;
  atMs: number;
  /** The heartbeat's body, the seq its next line carries, and its line's length at a one-digit seq, end included. */
  body: string;
  seq: number;
  lineBytes: number;
};

/** A heartbeat line's length at `seq` (written in decimal) given its length at a one-digit seq. */
export function heartbeatBytesAt(lineBytes: number, seq: number): number {
  return lineBytes + (seq < 10 ? 0 : seq < 100 ? 1 : 2);
}

/** Remembered host seqs and command ids. */
const WINDOW = 64;
const NAK_MIN_GAP_MS = 20;
const RETRANSMIT_FIRST_MS = 60;
const RETRANSMIT_CAP_MS = 1000;
/** Events an MCU can hold unacked; older ones are dropped (its buffer is finite). */
const MAX_UNACKED = 32;

export type SimStatus = {
  bootId: string;
  st: 'idle' | 'busy' | 'latched';
  latched: string | null;
  indexSlot: number;
  physicalSlot: number;
  cupPresent: boolean;
  pillsInCup: number;
  signal: string;
  unackedEvents: number;
  attached: boolean;
};

export class DeviceSimulator {
  readonly ledger: Ledger;
  readonly #clock: Clock;
  readonly #profile: HardwareProfile;
  readonly #rng: Random;
  readonly #faults: FaultRates = noFaults();
  /** How often each named fault fired (the report's fault paths). */
  readonly fired: FaultRates = noFaults();
  /** The world watching (the soak's aimed events); none by default. */
  watch: SimWatcher | undefined;
  /** Clean bytes left before the wire corrupts one (see #corrupt). */
  #cleanBytes: number | undefined;
  #cleanBytesRate = 0;
  readonly #log: Logger;
  /** Armed timers, for a reset or stop to cancel at once (an array: timers come and go hundreds of times a dosing). */
  readonly #timers: SimTimer[] = [];
  /** The last heartbeat body sent and what it said (not the MCU's state: a cache of its encoding). */
  #lastHeartbeat: { boot: string; st: string; cup: number; body: string; bytes: number } | undefined;
  #transport: Transport | undefined;
  #stopped = false;
  readonly #coast: boolean;
  readonly #dropDraw: LineDraw;
  readonly #duplicateDraw: LineDraw;
  readonly #notAnsweringDraw: LineDraw;
  #heartbeatTimer: SimTimer | undefined;

  // physical
  readonly #carousel: Carousel;
  readonly #cup = new Cup();
  #pouches = new Map<number, Pouch>();
  // non-volatile memory (survives a reset)
  readonly #cutMap = new Set<number>();
  /** Motion command ids and what became of them: a command sent to an earlier boot is answered from here, never run again. */
  readonly #ids = new Map<string, IdRecord>();
  #lifts = 0;

  // RAM
  #bootId = '00000000';
  #txSeq = 0;
  #nakSeq = 0;
  #lastNakAtMs = -Infinity;
  readonly #seqWindow = new Map<number, string>();
  /** No command but HELLO runs before the first HELLO since power-up: one sent to the boot before is refused (ERR:HELLO). */
  #helloSeen = false;
  #unacked: Unacked[] = [];
  #latched: 'LEASE' | 'JAM' | 'FAULT' | null = null;
  #signal = 'off';
  #motion: Motion | undefined;
  #lastHostFrameAtMs = 0;
  #silentUntilMs = -Infinity;
  #cupReported = true;
  /** The lift count the last CUP event carried. */
  #liftsReported = 0;
  #leaseTimer: SimTimer | undefined;

  constructor(opts: {
    clock: Clock;
    transport?: Transport;
    profile: HardwareProfile;
    seed: number;
    faults?: Partial<FaultRates>;
    logger?: Logger;
    /**
     * Per-line wire faults drawn as gaps between hits (same odds, another order of draws), and quietHeartbeat() and
     * coastHeartbeats() for a driver that skips idle heartbeats in virtual time (the soak's coalesced mode).
     */
    coast?: boolean;
  }) {
    this.#clock = opts.clock;
    this.#profile = opts.profile;
    this.#rng = new Random(opts.seed);
    this.#coast = opts.coast === true;
    this.#dropDraw = new LineDraw(this.#rng, this.#coast);
    this.#duplicateDraw = new LineDraw(this.#rng, this.#coast);
    this.#notAnsweringDraw = new LineDraw(this.#rng, this.#coast);
    this.#log = opts.logger ?? pino({ level: 'silent' });
    for (const [name, rate] of Object.entries(opts.faults ?? {})) this.setFault(name as FaultName, rate);
    this.#carousel = new Carousel(opts.profile);
    this.ledger = new Ledger(() => this.#cup.pills);
    if (opts.transport) this.attach(opts.transport);
    this.#powerUp();
  }

  // ------------------------------------------------------------ public surface

  /** (Re)connects the MCU's serial side; lines from an earlier transport are ignored from now on. */
  attach(transport: Transport): void {
    this.#transport = transport;
    transport.onLine((line) => {
      if (this.#transport === transport && !this.#stopped) this.#receive(line);
    });
    transport.onClose((reason) => {
      if (this.#transport === transport) {
        this.#transport = undefined;
        this.#log.info({ reason }, 'serial side closed');
      }
    });
  }

  loadPouches(pouches: SimPouch[]): void {
    this.#pouches = new Map(pouches.map((p) => [p.slot, makePouch(p.slot, p.label, p.pills)]));
    this.#cutMap.clear();
  }

  setFault(name: FaultName, rate: number): void {
    if (!isFaultName(name)) throw new FaultSpecError(`unknown fault ${JSON.stringify(name)}`);
    if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new FaultSpecError(`rate of ${name} must be from 0 to 1, got ${rate}`);
    this.#faults[name] = rate;
  }

  get faults(): Readonly<FaultRates> {
    return this.#faults;
  }

  pressButton(): void {
    this.ledger.notePress(this.#clock.now());
    this.#sendEvent({ name: 'BUTTON' });
  }

  /** The cup is lifted out: by the citizen (taking a dose), or by the care staff emptying it. */
  takeCup(by: Lifter = 'citizen'): void {
    if (!this.#cup.present) return;
    this.#lifts = (this.#lifts + 1) % LIFTS_MODULO;
    this.ledger.noteTake(this.#clock.now(), this.#cup.take(), by);
    this.#cupChanged();
  }

  placeCup(): void {
    if (this.#cup.present) return;
    this.#cup.place();
    this.#cupChanged();
  }

  get cupPresent(): boolean {
    return this.#cup.present;
  }

  powerCycle(): void {
    this.#log.info({ bootId: this.#bootId }, 'power cycle');
    this.#powerUp();
  }

  get bootId(): string {
    return this.#bootId;
  }

  /** A snapshot for the control channel and tests. */
  status(): SimStatus {
    return {
      bootId: this.#bootId,
      st: this.#state(),
      latched: this.#latched,
      indexSlot: this.#carousel.indexSlot,
      physicalSlot: this.#carousel.physicalSlot,
      cupPresent: this.#cup.present,
      pillsInCup: this.#cup.pills,
      signal: this.#signal,
      unackedEvents: this.#unacked.length,
      attached: this.#transport?.isOpen ?? false,
    };
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelAll();
  }

  readonly #fire = (name: FaultName): void => {
    this.fired[name]++;
  };

  /** Draws a named fault at its rate, counting it when it fires. */
  #roll(name: FaultName): boolean {
    if (!this.#rng.chance(this.#faults[name])) return false;
    this.fired[name]++;
    return true;
  }

  /** A per-line wire fault: the same coin as #roll in exact mode, a gap between hits with `coast` (LineDraw). */
  #lineRoll(draw: LineDraw, name: 'dropLine' | 'duplicateLine' | 'notAnswering'): boolean {
    if (!draw.hit(this.#faults[name])) return false;
    this.fired[name]++;
    return true;
  }

  // ------------------------------------------------------------ timers

  #after(ms: number, fn: () => void): SimTimer {
    const t: SimTimer = { handle: undefined, index: this.#timers.length, atMs: this.#clock.now() + Math.max(0, ms) };
    this.#timers.push(t);
    t.handle = this.#clock.setTimeout(() => {
      this.#forget(t);
      if (this.#stopped) return;
      try {
        fn();
      } catch (err) {
        this.#log.error({ err }, 'simulator timer failed');
      }
    }, ms);
    return t;
  }

  #cancel(t: SimTimer | undefined): void {
    if (!t) return;
    this.#clock.clearTimeout(t.handle);
    this.#forget(t);
  }

  /** Takes a fired or cancelled timer off the armed list: the last one moves into its place. */
  #forget(t: SimTimer): void {
    if (t.index < 0) return;
    const timers = this.#timers;
    const last = timers.pop()!;
    if (last !== t) {
      timers[t.index] = last;
      last.index = t.index;
    }
    t.index = -1;
  }

  #cancelAll(): void {
    for (const t of this.#timers) {
      this.#clock.clearTimeout(t.handle);
      t.index = -1;
    }
    this.#timers.length = 0;
  }

  // ------------------------------------------------------------ power

  /** Power-up or reset: RAM starts over, physics stays; BOOT goes out and is retransmitted until acked. */
  #powerUp(): void {
    this.#cancelAll();
    this.#motion = undefined;
    this.#leaseTimer = undefined;
    this.#bootId = this.#rng.hex8();
    this.#txSeq = 0;
    this.#nakSeq = 0;
    this.#lastNakAtMs = -Infinity;
    this.#seqWindow.clear();
    this.#helloSeen = false;
    // A motion the reset stopped never runs again under its id; the host learns of it by QUERY.
    for (const rec of this.#ids.values()) if (rec.state === 'running') rec.state = 'aborted';
    this.#unacked = [];
    this.#latched = null;
    this.#signal = 'off';
    this.ledger.noteSignal(this.#clock.now(), 'off');
    this.#silentUntilMs = -Infinity;
    this.#cupReported = this.#cup.present;
    this.#liftsReported = this.#lifts;
    this.#sendEvent({ name: 'BOOT', boot: this.#bootId, fw: this.#profile.firmware, hw: this.#profile.id });
    this.#scheduleHeartbeat();
  }

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = this.#after(this.#profile.heartbeatMs, this.#heartbeatTick);
  }

  /**
   * With `coast`: when the MCU is idle and would send nothing but heartbeats until something else happens (no motion,
   * no latch, no unacked event, not silent, attached), when its next one goes out and what it says; else undefined.
   */
  quietHeartbeat(): QuietHeartbeat | undefined {
    const t = this.#heartbeatTimer;
    if (!this.#coast || this.#stopped || !t?.handle || t.index < 0 || this.#motion || this.#latched || this.#unacked.length > 0) return undefined;
    if (!this.#transport?.isOpen || this.#silent()) return undefined;
    const body = this.#heartbeatBody();
    return { timer: t.handle, atMs: t.atMs, body, seq: this.#txSeq, lineBytes: this.#lastHeartbeat!.bytes };
  }

  /** When the next heartbeat goes out (a driver's cheap look before it asks quietHeartbeat()). */
  get heartbeatAtMs(): number | undefined {
    return this.#heartbeatTimer?.atMs;
  }

  /**
   * Of the next `most` idle heartbeat rounds (our line out; the host's heartbeat in, its seq and length at a one-digit
   * seq given), how many will pass the wire's faults clean.
   */
  cleanHeartbeatRounds(most: number, host: { seq: number; lineBytes: number }): number {
    const f = this.#faults;
    // Each round: our line out (a drop and a duplicate coin, its bytes but the line end), the host's line in (the
    // same coins, its bytes but the line end, and whether the MCU stops answering).
    let n = Math.min(most, Math.floor(this.#dropDraw.clean(f.dropLine) / 2), Math.floor(this.#duplicateDraw.clean(f.duplicateLine) / 2), this.#notAnsweringDraw.clean(f.notAnswering));
    if (f.corruptByte > 0) {
      const clean = this.#cleanByteCount();
      let bytes = 0;
      for (let k = 0; k < n; k++) {
        bytes += this.#roundBytes(k, host);
        if (bytes > clean) return k;
      }
    }
    return n;
  }

  /** The bytes the wire may corrupt in idle heartbeat round `k` from now: both lines but their ends. */
  #roundBytes(k: number, host: { seq: number; lineBytes: number }): number {
    const ours = heartbeatBytesAt(this.#lastHeartbeat?.bytes ?? 0, (this.#txSeq + k) % SEQ_MODULO);
    return ours - 1 + heartbeatBytesAt(host.lineBytes, (host.seq + k) % SEQ_MODULO) - 1;
  }

  /**
   * Accounts `rounds` heartbeat exchanges as done, the clean rounds quietHeartbeat() offered: the heartbeats' seqs
   * and the wire's fault draws are used up as the lines would have used them, the host's last line came in at
   * `lastHostLineAtMs`, and the next heartbeat goes out `rounds` periods later.
   */
  coastHeartbeats(rounds: number, host: { seq: number; lineBytes: number }, lastHostLineAtMs: number): void {
    const q = this.quietHeartbeat();
    if (!q || rounds <= 0) return;
    const f = this.#faults;
    this.#dropDraw.skip(2 * rounds, f.dropLine);
    this.#duplicateDraw.skip(2 * rounds, f.duplicateLine);
    this.#notAnsweringDraw.skip(rounds, f.notAnswering);
    if (f.corruptByte > 0) {
      let bytes = 0;
      for (let k = 0; k < rounds; k++) bytes += this.#roundBytes(k, host);
      this.#cleanBytes = this.#cleanByteCount() - bytes;
    }
    this.#txSeq = (this.#txSeq + rounds) % SEQ_MODULO;
    this.#lastHostFrameAtMs = lastHostLineAtMs;
    this.#cancel(this.#heartbeatTimer);
    this.#heartbeatTimer = this.#after(q.atMs + rounds * this.#profile.heartbeatMs - this.#clock.now(), this.#heartbeatTick);
  }

  #cleanByteCount(): number {
    const p = this.#faults.corruptByte;
    if (this.#cleanBytes === undefined || this.#cleanBytesRate !== p) {
      this.#cleanBytesRate = p;
      this.#cleanBytes = this.#geometric(p);
    }
    return this.#cleanBytes;
  }

  readonly #heartbeatTick = () => {
    this.#sendFrame('H', this.#heartbeatBody());
    this.#scheduleHeartbeat();
  };

  /** The heartbeat's body; an idle MCU sends the same one every second, so it is encoded again only when it changes. */
  #heartbeatBody(): string {
    const st = this.#state();
    const cup = this.#cup.present ? 1 : 0;
    const last = this.#lastHeartbeat;
    if (last?.boot === this.#bootId && last.st === st && last.cup === cup) return last.body;
    const body = encodeHeartbeat('mcu', { boot: this.#bootId, st, cup });
    this.#lastHeartbeat = { boot: this.#bootId, st, cup, body, bytes: this.#coast ? encodeFrame({ kind: 'H', seq: 0, body }).length : 0 };
    return body;
  }

  #state(): 'idle' | 'busy' | 'latched' {
    return this.#latched ? 'latched' : this.#motion ? 'busy' : 'idle';
  }

  // ------------------------------------------------------------ wire: transmit

  #silent(): boolean {
    return this.#clock.now() < this.#silentUntilMs;
  }

  #write(line: string): void {
    const t = this.#transport;
    if (!t || !t.isOpen || this.#silent()) return;
    if (this.#lineRoll(this.#dropDraw, 'dropLine')) return;
    const body = this.#corrupt(line, line.length - 1);
    t.write(body);
    if (this.#lineRoll(this.#duplicateDraw, 'duplicateLine')) t.write(body);
  }

  /** `text` with bits flipped at the wire's error rate among its first `end` bytes (a line ending after them is kept as it is). */
  #corrupt(text: string, end = text.length): string {
    const p = this.#faults.corruptByte;
    if (p <= 0) return text;
    // Bytes until the next flipped one, drawn once (geometric) rather than a draw per byte: same odds, far fewer draws.
    if (this.#cleanBytes === undefined || this.#cleanBytesRate !== p) {
      this.#cleanBytesRate = p;
      this.#cleanBytes = this.#geometric(p);
    }
    if (this.#cleanBytes >= end) {
      this.#cleanBytes -= end;
      return text;
    }
    let out = '';
    let i = 0;
    while (this.#cleanBytes < end - i) {
      const at = i + this.#cleanBytes;
      let c = text.charCodeAt(at) ^ (1 << this.#rng.int(8));
      // A flipped bit that makes a newline would split the line; the gate sees it as a garbled byte instead.
      if (c === 0x0a) c = 0x8a;
      out += text.slice(i, at) + String.fromCharCode(c);
      this.#fire('corruptByte');
      i = at + 1;
      this.#cleanBytes = this.#geometric(p);
    }
    this.#cleanBytes -= end - i;
    return out + text.slice(i);
  }

  /** Failures before the first success of a p-coin: the clean bytes before the next corrupted one. */
  #geometric(p: number): number {
    if (p >= 1) return 0;
    return Math.floor(Math.log(1 - this.#rng.next()) / Math.log(1 - p));
  }

  #sendFrame(kind: FrameKind, body: string, seq?: number): string | undefined {
    const s = seq ?? this.#nextTxSeq();
    let line: string;
    try {
      line = encodeFrame({ kind, seq: s, body });
    } catch (err) {
      this.#log.error({ err, body }, 'cannot encode frame');
      return undefined;
    }
    this.#write(line);
    return line;
  }

  #nextTxSeq(): number {
    const s = this.#txSeq;
    this.#txSeq = nextSeq(s);
    return s;
  }

  #sendEvent(ev: DeviceEvent): void {
    const seq = this.#nextTxSeq();
    let line: string;
    try {
      line = encodeFrame({ kind: 'E', seq, body: encodeEvent(ev) });
    } catch (err) {
      this.#log.error({ err, ev: ev.name }, 'cannot encode event');
      return;
    }
    const u: Unacked = { seq, line, backoffMs: RETRANSMIT_FIRST_MS };
    this.#unacked.push(u);
    while (this.#unacked.length > MAX_UNACKED) this.#cancel(this.#unacked.shift()!.timer);
    this.#log.debug({ ev: ev.name, seq }, 'event');
    this.#write(line);
    this.#armRetransmit(u);
  }

  #armRetransmit(u: Unacked): void {
    u.timer = this.#after(u.backoffMs, () => {
      this.#write(u.line);
      u.backoffMs = Math.min(u.backoffMs * 2, RETRANSMIT_CAP_MS);
      this.#armRetransmit(u);
    });
  }

  #nak(reason: string): void {
    const now = this.#clock.now();
    if (now - this.#lastNakAtMs < NAK_MIN_GAP_MS) return;
    this.#lastNakAtMs = now;
    const seq = this.#nakSeq;
    this.#nakSeq = nextSeq(seq);
    this.#sendFrame('N', reason, seq);
  }

  // ------------------------------------------------------------ wire: receive

  #receive(raw: string): void {
    if (this.#silent()) return;
    if (this.#lineRoll(this.#dropDraw, 'dropLine')) return;
    const line = this.#corrupt(raw);
    const twice = this.#lineRoll(this.#duplicateDraw, 'duplicateLine');
    for (let i = 0; i < (twice ? 2 : 1); i++) {
      try {
        this.#handleLine(line);
      } catch (err) {
        this.#log.error({ err }, 'line handler failed');
      }
    }
  }

  #handleLine(line: string): void {
    if (this.#silent()) return;
    const r = decodeFrame(line);
    if (!r.ok) {
      this.#log.debug({ reason: r.reason, detail: r.detail }, 'rejected line');
      if (r.reason !== 'empty') this.#nak(r.reason);
      return;
    }
    this.#lastHostFrameAtMs = this.#clock.now();
    if (this.#lineRoll(this.#notAnsweringDraw, 'notAnswering')) {
      this.#silentUntilMs = this.#clock.now() + NOT_ANSWERING_MS;
      this.#log.info('fault notAnswering: silent for 5 s');
      return;
    }
    const { kind, seq, body } = r.frame;
    switch (kind) {
      case 'C':
        this.#command(seq, body);
        break;
      case 'A': {
        const i = this.#unacked.findIndex((u) => u.seq === seq);
        if (i >= 0) {
          this.#cancel(this.#unacked[i]!.timer);
          this.#unacked.splice(i, 1);
        }
        break;
      }
      case 'N': {
        const oldest = this.#unacked[0];
        if (oldest) this.#write(oldest.line);
        break;
      }
      default:
        // H keeps the lease alive (done above); E from the host means nothing.
        break;
    }
  }

  #command(seq: number, body: string): void {
    const dec = decodeCommand(body);
    const isHello = dec.ok && dec.value.name === 'HELLO';
    if (isHello) this.#seqWindow.clear();
    else if (!this.#helloSeen && dec.ok && dec.value.name !== 'SIM' && dec.value.name !== 'FAULT') {
      // Sent to an earlier boot (a retransmission the reset cut off): never run, and not remembered under its seq.
      this.#sendFrame('A', 'ERR:HELLO', seq);
      return;
    } else {
      const prev = this.#seqWindow.get(seq);
      if (prev !== undefined) {
        this.#log.debug({ seq }, 'duplicate seq: re-ack');
        this.#write(prev);
        return;
      }
    }
    const aimed = dec.ok ? this.watch?.command?.(dec.value) : undefined;
    if (aimed === 'reset') {
      // The MCU resets as the line arrives: it never ran, and its RAM (the seq window too) is gone.
      this.#log.info({ cmd: dec.ok ? dec.value.name : null }, 'reset as a command arrived');
      this.#powerUp();
      return;
    }
    if (aimed === 'deaf') {
      this.#silentUntilMs = this.#clock.now() + NOT_ANSWERING_MS;
      this.#log.info('notAnswering as a command arrived: silent for 5 s');
      return;
    }
    let ackBody: string;
    const after: (() => void)[] = [];
    if (!dec.ok) ackBody = dec.reason === 'unknown_message' ? 'ERR:UNKNOWN' : 'ERR:BAD_FIELD';
    else ackBody = this.#execute(dec.value, after, aimed);
    const line = this.#sendFrame('A', ackBody, seq);
    if (line) {
      this.#seqWindow.delete(seq);
      this.#seqWindow.set(seq, line);
      while (this.#seqWindow.size > WINDOW) this.#seqWindow.delete(this.#seqWindow.keys().next().value!);
    }
    // Events a command causes at once follow its ack on the wire.
    for (const f of after) f();
    if (aimed === 'deafAfter') {
      this.#silentUntilMs = this.#clock.now() + NOT_ANSWERING_MS;
      this.#log.info('notAnswering just after a command: silent for 5 s');
    }
  }

  #execute(cmd: Command, after: (() => void)[], aimed: SimAimed = undefined): string {
    switch (cmd.name) {
      case 'HELLO':
        if (cmd.v !== PROTOCOL_VERSION || cmd.cat !== CATALOGUE_HASH) return 'ERR:VERSION';
        this.#helloSeen = true;
        return encodeAck('HELLO', {
          result: 'OK',
          fields: { v: PROTOCOL_VERSION, cat: CATALOGUE_HASH, hw: this.#profile.id, fw: this.#profile.firmware, boot: this.#bootId },
        });
      case 'STATUS':
        return encodeAck('STATUS', {
          result: 'OK',
          fields: { st: this.#state(), slot: this.#carousel.indexSlot, cup: this.#cup.present ? 1 : 0, boot: this.#bootId, lifts: this.#lifts },
        });
      case 'QUERY': {
        const rec = this.#ids.get(cmd.id);
        if (!rec) return encodeAck('QUERY', { result: 'OK', fields: { id: cmd.id, st: 'none' } });
        if (rec.state === 'aborted') return encodeAck('QUERY', { result: 'OK', fields: { id: cmd.id, st: 'aborted', slot: rec.slot } });
        if (rec.state === 'running' || !rec.outcome) return encodeAck('QUERY', { result: 'OK', fields: { id: cmd.id, st: 'running', slot: rec.slot } });
        const { name, id: _id, ...rest } = rec.outcome;
        return encodeAck('QUERY', { result: 'OK', fields: { id: cmd.id, st: 'done', ev: name, ...rest } });
      }
      case 'SIGNAL':
        this.#signal = cmd.mode;
        this.ledger.noteSignal(this.#clock.now(), cmd.mode);
        return 'OK';
      case 'CLEAR':
        this.#latched = null;
        return 'OK';
      case 'FAULT':
        return this.#faultCommand(cmd);
      case 'SIM':
        if (cmd.act === 'press') after.push(() => this.pressButton());
        else if (cmd.act === 'take') after.push(() => this.takeCup());
        else after.push(() => this.placeCup());
        return 'OK';
      case 'ROTATE':
      case 'RELEASE':
      case 'SHAKE':
        return this.#motionCommand(cmd, aimed);
    }
  }

  /** The debug channel: a fault's rate, set at run time. */
  #faultCommand(f: { fault: string; p: number }): string {
    if (!isFaultName(f.fault)) return 'ERR:BAD_FIELD';
    this.setFault(f.fault, f.p / 1_000_000);
    this.#log.info({ fault: f.fault, rate: f.p / 1_000_000 }, 'fault rate set');
    return 'OK';
  }

  // ------------------------------------------------------------ motion

  #motionCommand(cmd: MotionCommand, aimed: SimAimed): string {
    const rec = this.#ids.get(cmd.id);
    if (rec) {
      // Same id: a retransmission the seq window no longer covers, or a restarted host. Never move twice.
      if (rec.name !== cmd.name || rec.slot !== cmd.slot || rec.state === 'aborted') return 'ERR:ID_REUSED';
      const outcome = rec.outcome;
      if (rec.state === 'done' && outcome) this.#after(0, () => this.#sendEvent(outcome));
      return 'OK';
    }
    if (this.#latched) return 'ERR:LATCHED';
    if (this.#motion) return 'BUSY';
    if (cmd.slot >= this.#profile.slotCount) return 'ERR:RANGE';
    // The motor driver trips as it is energised (over-current, over-temperature): latched safe until CLEAR, nothing moved.
    if (this.#roll('driverFault') || aimed === 'trip') {
      this.#latch('FAULT');
      return 'ERR:LATCHED';
    }
    if (cmd.name === 'RELEASE') {
      if (this.#cutMap.has(cmd.slot)) return 'ERR:SLOT_EMPTY';
      if (!this.#cup.present) return 'ERR:CUP';
    }
    if (cmd.name === 'SHAKE' && !this.#cutMap.has(cmd.slot)) return 'ERR:NOT_OPEN';
    // No pill leaves a pouch after the deadline: the cut (or the shake's end) must come within it.
    if (cmd.name === 'RELEASE' && this.#carousel.moveMs(cmd.slot) + this.#profile.cutMs > cmd.dl) return 'ERR:DEADLINE';
    if (cmd.name === 'SHAKE' && this.#carousel.moveMs(cmd.slot) + this.#profile.shakeMs > cmd.dl) return 'ERR:DEADLINE';

    this.#ids.set(cmd.id, { name: cmd.name, slot: cmd.slot, state: 'running' });
    while (this.#ids.size > WINDOW) this.#ids.delete(this.#ids.keys().next().value!);
    this.ledger.noteExecution(cmd.id, cmd.name, cmd.slot, this.#clock.now());
    const motion: Motion = { id: cmd.id, name: cmd.name, slot: cmd.slot, leaseMs: cmd.lease, timers: [], stick: aimed === 'stick' };
    this.#motion = motion;
    this.#lastHostFrameAtMs = this.#clock.now();
    this.#armLease(motion);
    const cutAtMs = cmd.name === 'RELEASE' ? this.#carousel.moveMs(cmd.slot) + this.#profile.cutMs : undefined;
    const durationMs =
      cmd.name === 'ROTATE' ? this.#startRotate(motion) : cmd.name === 'RELEASE' ? this.#startRelease(motion) : this.#startShake(motion);
    if (this.#roll('mcuReset')) {
      const atMs = this.#rng.between(0, durationMs);
      motion.timers.push(this.#after(atMs, () => {
        this.#log.info({ id: motion.id, atMs: Math.round(atMs) }, 'fault mcuReset during motion');
        this.#powerUp();
      }));
    }
    this.#log.debug({ cmd: cmd.name, id: cmd.id, slot: cmd.slot, durationMs }, 'motion started');
    this.watch?.motion?.({ name: cmd.name, id: cmd.id, slot: cmd.slot, durationMs, cutAtMs });
    return 'OK';
  }

  /** Returns the motion's duration, ms. */
  #startRotate(m: Motion): number {
    const jam = this.#roll('jam');
    const slip = !jam && this.#roll('slip') ? (this.#rng.chance(0.5) ? 1 : -1) : 0;
    const unreadable = this.#roll('labelUnreadable');
    const plan = this.#carousel.plan(m.slot, { jam, slip });
    m.timers.push(this.#after(plan.durationMs, () => {
      this.#carousel.apply(plan);
      if (plan.jammed) {
        this.#finish(m, { name: 'ROTATED', id: m.id, slot: plan.indexSlot, err: 'JAM' });
        this.#latch('JAM');
        return;
      }
      const label = readLabel(this.#pouches.get(plan.physicalSlot), unreadable);
      this.#finish(m, label === undefined
        ? { name: 'ROTATED', id: m.id, slot: plan.indexSlot, err: 'LABEL' }
        : { name: 'ROTATED', id: m.id, slot: plan.indexSlot, label });
    }));
    return plan.durationMs;
  }

  #startRelease(m: Motion): number {
    const moveMs = this.#carousel.moveMs(m.slot);
    const cutAtMs = moveMs + this.#profile.cutMs;
    let reading = { n: 0, w: [] as number[] };
    let entry: LedgerEntry | undefined;
    let pouch: Pouch | undefined;
    m.timers.push(this.#after(cutAtMs, () => {
      if (moveMs > 0) this.#carousel.moveTo(m.slot);
      const at = this.#carousel.physicalSlot;
      pouch = this.#pouches.get(at);
      this.#cutMap.add(m.slot);
      this.ledger.noteCut(at);
      const falling = pouch ? cutPouch(pouch, this.#rng, m.stick ? { ...this.#faults, pillStuck: 1 } : this.#faults, this.#fire) : 0;
      const cupPillsBefore = this.#cup.pills;
      this.#cup.receive(falling);
      reading = sensePills(falling, 0, this.#rng, this.#profile, this.#faults, this.#fire);
      entry = this.ledger.addEntry({
        atMs: this.#clock.now(), commandId: m.id, slot: at, label: pouch?.label ?? null, action: 'release',
        pillsFell: falling, pulsesReported: 0, pillsLeftInPouch: pouch?.pills ?? 0, cupPillsBefore, cupPresent: this.#cup.present,
      });
    }));
    const total = cutAtMs + this.#profile.settleMs;
    m.timers.push(this.#after(total, () => {
      if (entry) entry.pulsesReported = reading.n;
      this.#finish(m, { name: 'RELEASED', id: m.id, slot: m.slot, n: reading.n, w: reading.w, empty: this.#emptyReading(pouch) });
    }));
    return total;
  }

  #startShake(m: Motion): number {
    const moveMs = this.#carousel.moveMs(m.slot);
    let reading = { n: 0, w: [] as number[] };
    let entry: LedgerEntry | undefined;
    let pouch: Pouch | undefined;
    m.timers.push(this.#after(moveMs, () => {
      if (moveMs > 0) this.#carousel.moveTo(m.slot);
      const at = this.#carousel.physicalSlot;
      pouch = this.#pouches.get(at);
      const falling = pouch && pouch.cut ? shakePouch(pouch) : 0;
      const cupPillsBefore = this.#cup.pills;
      this.#cup.receive(falling);
      // Freed pills leave at some point during the shake, then fall.
      reading = sensePills(falling, this.#rng.between(0, this.#profile.shakeMs), this.#rng, this.#profile, this.#faults, this.#fire);
      entry = this.ledger.addEntry({
        atMs: this.#clock.now(), commandId: m.id, slot: at, label: pouch?.label ?? null, action: 'shake',
        pillsFell: falling, pulsesReported: 0, pillsLeftInPouch: pouch?.pills ?? 0, cupPillsBefore, cupPresent: this.#cup.present,
      });
    }));
    const total = moveMs + this.#profile.shakeMs + this.#profile.settleMs;
    m.timers.push(this.#after(total, () => {
      if (entry) entry.pulsesReported = reading.n;
      this.#finish(m, { name: 'SHAKEN', id: m.id, slot: m.slot, n: reading.n, w: reading.w, empty: this.#emptyReading(pouch) });
    }));
    return total;
  }

  /** The pouch-empty sensor: right unless the emptySensorWrong fault flips it. */
  #emptyReading(pouch: Pouch | undefined): 0 | 1 {
    const empty = (pouch?.pills ?? 0) === 0;
    return empty !== this.#roll('emptySensorWrong') ? 1 : 0;
  }

  #finish(m: Motion, outcome: OutcomeEvent): void {
    if (this.#motion !== m) return;
    for (const t of m.timers) this.#cancel(t);
    this.#motion = undefined;
    this.#cancel(this.#leaseTimer);
    this.#leaseTimer = undefined;
    const rec = this.#ids.get(m.id);
    if (rec) {
      rec.state = 'done';
      rec.outcome = outcome;
    }
    this.#sendEvent(outcome);
  }

  #latch(reason: 'LEASE' | 'JAM' | 'FAULT'): void {
    this.#latched = reason;
    this.#log.warn({ reason }, 'latched safe');
    this.#sendEvent({ name: 'LATCHED', reason });
  }

  /** Checks the lease when it would run out, and again from the last host frame if one came meanwhile. */
  #armLease(m: Motion): void {
    this.#cancel(this.#leaseTimer);
    const dueMs = this.#lastHostFrameAtMs + m.leaseMs - this.#clock.now();
    this.#leaseTimer = this.#after(dueMs, () => {
      if (this.#motion !== m) return;
      if (this.#clock.now() - this.#lastHostFrameAtMs >= m.leaseMs) {
        // Stopped half-way: the id is aborted like one a reset stopped (never run again; QUERY says so).
        for (const t of m.timers) this.#cancel(t);
        this.#motion = undefined;
        this.#leaseTimer = undefined;
        const rec = this.#ids.get(m.id);
        if (rec) rec.state = 'aborted';
        this.#latch('LEASE');
      } else this.#armLease(m);
    });
  }

  #cupChanged(): void {
    this.#after(this.#profile.cupDebounceMs, () => {
      // A cup lifted and put back within the debounce is where it was last reported, but the lift was counted: the
      // event still goes, with the cup present and the count gone up, as STATUS would tell it.
      if (this.#cup.present === this.#cupReported && this.#lifts === this.#liftsReported) return;
      this.#cupReported = this.#cup.present;
      this.#liftsReported = this.#lifts;
      this.#sendEvent({ name: 'CUP', present: this.#cup.present ? 1 : 0, lifts: this.#lifts });
    });
  }
}

// The host's serial link to the MCU: HELLO, heartbeats, retransmission, naks, event dedup, reset detection, reconnect.
//
// Everything here runs on the injected Clock and calls back synchronously, so a
// run on a ManualClock is reproducible to the frame. The layer above gets
// catalogue-validated commands' acks and events, never a half-decoded frame.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import {
  CATALOGUE_HASH,
  PROTOCOL_VERSION,
  decodeAck,
  decodeEvent,
  decodeHeartbeat,
  encodeCommand,
  encodeHeartbeat,
  type Ack,
  type Command,
  type CommandName,
  type DeviceEvent,
  type McuHeartbeat,
} from '../../../protocol/src/catalogue.js';
import { SEQ_MODULO, decodeFrame, encodeFrame, nextSeq, type FrameKind, type FrameRejection } from '../../../protocol/src/frame.js';
import type { Transport } from '../../../protocol/src/transport.js';
import type { HardwareProfile } from '../../../hardware/src/profile.js';
import { DedupWindow } from './dedup-window.js';
import { LinkError, type LinkErrorCode } from './errors.js';
export { LinkError } from './errors.js';

/** The host's heartbeat body: it carries no fields, so it never changes. */
const HOST_HEARTBEAT = encodeHeartbeat('host');
/** Its line's length at a one-digit seq, end included. */
const HOST_HEARTBEAT_BYTES = encodeFrame({ kind: 'H', seq: 0, body: HOST_HEARTBEAT }).length;

export type LinkState = 'closed' | 'connecting' | 'ready' | 'lost';
export type HelloInfo = { v: number; cat: string; hw: string; fw: string; boot: string };
export type SendResult<N extends CommandName> = { ok: true; ack: Ack<N> } | { ok: false; error: LinkError };

export type LinkStats = {
  framesOut: number;
  framesIn: number;
  retransmits: number;
  naksIn: number;
  naksOut: number;
  /** Received lines that were no frame, by reason. */
  rejected: Partial<Record<FrameRejection, number>>;
  /** Well-framed bodies that did not fit the catalogue. */
  badBodies: number;
  /** MCU events seen again (retransmissions), acked but not handed up. */
  duplicates: number;
  /** Acks for no outstanding command (late answers to a command already done). */
  strayAcks: number;
  timeouts: number;
  resets: number;
  reconnects: number;
};

type LinkEvents = {
  ready: [HelloInfo];
  event: [DeviceEvent];
  heartbeat: [Readonly<McuHeartbeat>];
  mcuReset: [{ previousBootId: string; bootId: string }];
  lost: [string];
  state: [LinkState];
};

type Pending = {
  seq: number;
  name: CommandName;
  /** The command's body; for a command with a deadline, encoded afresh at every transmission. */
  cmd: Command;
  deadlineAtMs: number | undefined;
  line: string;
  attempts: number;
  timer: TimerHandle | undefined;
  cb: (r: SendResult<CommandName>) => void;
};

export type DeviceLinkOptions = {
  clock: Clock;
  profile: HardwareProfile;
  logger: Logger;
  /** Opens the transport; called again to reconnect by path after the device went away. */
  open: () => Transport | Promise<Transport>;
  /** Commands in flight at once. */
  window?: number;
  /** Transmissions of a command before it fails with DOSIS_ERR_LINK_TIMEOUT. */
  maxAttempts?: number;
};

/** Retransmission backoff never waits longer than this. */
const MAX_BACKOFF_MS = 1000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
/** At most one nak per this many ms: a noisy line must not turn into a nak storm. */
const NAK_GAP_MS = 20;

export class DeviceLink {
  readonly #clock: Clock;
  readonly #profile: HardwareProfile;
  readonly #log: Logger;
  readonly #open: DeviceLinkOptions['open'];
  readonly #window: number;
  readonly #maxAttempts: number;
  readonly #emitter = new EventEmitter();
  readonly #dedup = new DedupWindow();

  #state: LinkState = 'closed';
  #transport: Transport | undefined;
  #hello: HelloInfo | undefined;
  #helloInFlight = false;
  #txSeq = 0;
  #hbSeq = 0;
  #nakCount = 0;
  #lastNakMs = -Infinity;
  #lastRxMs = 0;
  #reconnectDelayMs = RECONNECT_MIN_MS;
  readonly #outstanding = new Map<number, Pending>();
  readonly #queue: Pending[] = [];
  #heartbeatTimer: TimerHandle | undefined;
  #heartbeatAtMs = 0;
  /** The last frame received was an MCU heartbeat, handed up to the listeners (nothing came between it and now). */
  #heartbeatLast = false;
  #lastHeartbeat: { body: string; value: Readonly<McuHeartbeat> } | undefined;
  #reconnectTimer: TimerHandle | undefined;
  /** Bumped on every (re)connect so callbacks of an old transport are ignored. */
  #generation = 0;

  readonly stats: LinkStats = {
    framesOut: 0,
    framesIn: 0,
    retransmits: 0,
    naksIn: 0,
    naksOut: 0,
    rejected: {},
    badBodies: 0,
    duplicates: 0,
    strayAcks: 0,
    timeouts: 0,
    resets: 0,
    reconnects: 0,
  };

  constructor(opts: DeviceLinkOptions) {
    this.#clock = opts.clock;
    this.#profile = opts.profile;
    this.#log = opts.logger;
    this.#open = opts.open;
    this.#window = opts.window ?? 4;
    this.#maxAttempts = opts.maxAttempts ?? 8;
    this.#emitter.setMaxListeners(50);
  }

  get state(): LinkState {
    return this.#state;
  }

  get hello(): HelloInfo | undefined {
    return this.#hello;
  }

  on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.#emitter.on(event, listener as (...a: unknown[]) => void);
    return this;
  }

  off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.#emitter.off(event, listener as (...a: unknown[]) => void);
    return this;
  }

  start(): void {
    if (this.#state !== 'closed') return;
    this.#setState('connecting');
    this.#connect();
    this.#armHeartbeat();
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#generation++;
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#heartbeatTimer = undefined;
    this.#failAll('DOSIS_ERR_LINK_CLOSED', 'link closed');
    const t = this.#transport;
    this.#transport = undefined;
    this.#setState('closed');
    t?.close();
  }

  /**
   * Sends a command; `cb` is called exactly once, with the MCU's ack or why there is none. A motion command with
   * `deadlineAtMs` carries, at every transmission, the ms left until then (`dl`); once none are left it is not
   * transmitted again and fails with DOSIS_ERR_DEADLINE (an earlier transmission may have run: ask with QUERY).
   */
  send<N extends CommandName>(cmd: Extract<Command, { name: N }>, cb: (r: SendResult<N>) => void, opts: { deadlineAtMs?: number } = {}): void {
    if (this.#state !== 'ready') {
      cb({ ok: false, error: new LinkError('DOSIS_ERR_LINK_NOT_READY', `link is ${this.#state}`) });
      return;
    }
    this.#enqueue(cmd, cb as (r: SendResult<CommandName>) => void, opts.deadlineAtMs);
  }

  /** Promise form of send(): resolves with the ack (OK, BUSY or ERR:…), rejects with a LinkError. */
  request<N extends CommandName>(cmd: Extract<Command, { name: N }>): Promise<Ack<N>> {
    return new Promise((resolve, reject) => this.send(cmd, (r) => (r.ok ? resolve(r.ack) : reject(r.error))));
  }

  // ------------------------------------------------------------ connection

  #connect(): void {
    const generation = ++this.#generation;
    let opened: Transport | Promise<Transport>;
    try {
      opened = this.#open();
    } catch (err) {
      this.#openFailed(err);
      return;
    }
    if (opened instanceof Promise) {
      opened.then(
        (t) => (generation === this.#generation ? this.#attach(t) : t.close()),
        (err: unknown) => generation === this.#generation && this.#openFailed(err),
      );
    } else this.#attach(opened);
  }

  #openFailed(err: unknown): void {
    this.#log.warn({ err: (err as Error).message, retryMs: this.#reconnectDelayMs }, 'cannot open the serial port; retrying');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed') return;
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.stats.reconnects++;
      this.#connect();
    }, this.#reconnectDelayMs);
    this.#reconnectDelayMs = Math.min(this.#reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }

  #attach(t: Transport): void {
    if (this.#state === 'closed') {
      t.close();
      return;
    }
    const generation = this.#generation;
    this.#transport = t;
    this.#lastRxMs = this.#clock.now();
    t.onLine((line) => {
      if (generation !== this.#generation) return;
      try {
        this.#onLine(line);
      } catch (err) {
        // A reader loop logs a handler's exception and keeps reading.
        this.#log.error({ err }, 'error while handling a received line');
      }
    });
    t.onClose((reason) => generation === this.#generation && this.#onTransportClosed(reason));
    this.#log.info('serial port open; saying hello');
    this.#sendHello();
  }

  #onTransportClosed(reason: string): void {
    if (this.#state === 'closed') return;
    this.#transport = undefined;
    this.#helloInFlight = false;
    this.#log.warn({ reason }, 'serial port closed');
    this.#failAll('DOSIS_ERR_LINK_LOST', `serial port closed: ${reason}`);
    if (this.#state === 'ready') this.#emitter.emit('lost', `port closed: ${reason}`);
    this.#setState('lost');
    this.#reconnectDelayMs = RECONNECT_MIN_MS;
    this.#scheduleReconnect();
  }

  #sendHello(): void {
    if (this.#helloInFlight || !this.#transport) return;
    this.#helloInFlight = true;
    this.#enqueue({ name: 'HELLO', v: PROTOCOL_VERSION, cat: CATALOGUE_HASH }, (r) => {
      this.#helloInFlight = false;
      if (!r.ok) {
        this.#log.debug({ code: r.error.code }, 'no answer to hello yet');
        return; // the heartbeat tick says hello again while not ready
      }
      const ack = r.ack as Ack<'HELLO'>;
      if (ack.result !== 'OK') {
        const error = new LinkError('DOSIS_ERR_LINK_VERSION', `MCU refused hello: ${ack.result} (host speaks v${PROTOCOL_VERSION}, catalogue ${CATALOGUE_HASH})`);
        this.#log.error({ result: ack.result }, error.message);
        this.#emitter.emit('lost', error.message);
        this.close();
        return;
      }
      const hello: HelloInfo = { ...ack.fields };
      const previous = this.#hello;
      // A reset first seen here (its BOOT event and heartbeats lost, or an ERR:HELLO): reported like any other.
      if (previous && previous.boot !== hello.boot) this.#resetSeen(previous.boot, hello.boot);
      this.#hello = hello;
      this.#reconnectDelayMs = RECONNECT_MIN_MS;
      this.#log.info({ hw: hello.hw, fw: hello.fw, boot: hello.boot }, 'MCU ready');
      this.#setState('ready');
      this.#emitter.emit('ready', hello);
    });
  }

  // ------------------------------------------------------------ heartbeats and the silence watchdog

  #armHeartbeat(delayMs = this.#profile.heartbeatMs): void {
    this.#heartbeatAtMs = this.#clock.now() + delayMs;
    this.#heartbeatTimer = this.#clock.setTimeout(this.#onHeartbeatTimer, delayMs);
  }

  /**
   * When the link is idle, exchanging nothing but heartbeats (ready, nothing outstanding or queued, and the last
   * frame received an MCU heartbeat): its heartbeat timer, when it fires, the seq its line will carry and the line's
   * length at a one-digit seq, and the MCU heartbeat body it last handed up; else undefined. For a virtual-time driver that skips idle heartbeats (the soak's
   * coalesced mode, device-sim/src/soak/coast.ts).
   */
  idleHeartbeat(): { timer: TimerHandle; atMs: number; seq: number; lineBytes: number; mcuBody: string } | undefined {
    if (this.#state !== 'ready' || !this.#transport || !this.#heartbeatTimer || !this.#heartbeatLast || !this.#lastHeartbeat) return undefined;
    if (this.#outstanding.size > 0 || this.#queue.length > 0 || this.#helloInFlight) return undefined;
    return { timer: this.#heartbeatTimer, atMs: this.#heartbeatAtMs, seq: this.#hbSeq, lineBytes: HOST_HEARTBEAT_BYTES, mcuBody: this.#lastHeartbeat.body };
  }

  /**
   * Accounts `rounds` idle heartbeat exchanges as done, as idleHeartbeat() offered them: our heartbeats sent, the
   * MCU's received (the same body as the last one: 'heartbeat' listeners, which must be idempotent for a repeated
   * value, are not called again), the last of them at `lastRxAtMs`; the next heartbeat goes out `rounds` periods on.
   * The silence watchdog sees what it would have seen: a frame at least every period.
   */
  coastHeartbeats(rounds: number, lastRxAtMs: number): void {
    if (rounds <= 0 || !this.idleHeartbeat()) return;
    this.#hbSeq = (this.#hbSeq + rounds) % SEQ_MODULO;
    this.stats.framesOut += rounds;
    this.stats.framesIn += rounds;
    this.#lastRxMs = lastRxAtMs;
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#armHeartbeat(this.#heartbeatAtMs + rounds * this.#profile.heartbeatMs - this.#clock.now());
  }

  readonly #onHeartbeatTimer = () => {
    this.#heartbeatTick();
    if (this.#state !== 'closed') this.#armHeartbeat();
  };

  #heartbeatTick(): void {
    if (!this.#transport) return;
    this.#writeFrame('H', this.#hbSeq, HOST_HEARTBEAT);
    this.#hbSeq = nextSeq(this.#hbSeq);
    const silentMs = this.#clock.now() - this.#lastRxMs;
    if (this.#state === 'ready' && silentMs > this.#profile.missedHeartbeats * this.#profile.heartbeatMs) {
      this.#log.warn({ silentMs }, 'MCU silent: link lost');
      this.#setState('lost');
      this.#emitter.emit('lost', `no frame from the MCU for ${silentMs} ms`);
    }
    if (this.#state !== 'ready') this.#sendHello();
  }

  // ------------------------------------------------------------ sending

  #enqueue(cmd: Command, cb: (r: SendResult<CommandName>) => void, deadlineAtMs?: number): void {
    const p: Pending = { seq: -1, name: cmd.name, cmd, deadlineAtMs, line: '', attempts: 0, timer: undefined, cb };
    this.#queue.push(p);
    this.#pump();
  }

  #pump(): void {
    while (this.#transport && this.#outstanding.size < this.#window && this.#queue.length > 0) {
      const p = this.#queue.shift()!;
      let seq = this.#txSeq;
      while (this.#outstanding.has(seq)) seq = nextSeq(seq);
      this.#txSeq = nextSeq(seq);
      p.seq = seq;
      p.line = encodeFrame({ kind: 'C', seq, body: encodeCommand(p.cmd) });
      this.#outstanding.set(seq, p);
      this.#transmit(p);
    }
  }

  #backoffMs(p: Pending): number {
    // Long enough for the frame out, the MCU's turnaround and the ack back, then doubling.
    const frameMs = (p.line.length * 10_000) / this.#profile.baudRate;
    return Math.min(MAX_BACKOFF_MS, (2 * frameMs + 40) * 2 ** (p.attempts - 1));
  }

  #transmit(p: Pending): void {
    if (!this.#transport) return;
    if (p.deadlineAtMs !== undefined) {
      // The same seq with the time left now: a retransmission never stretches the deadline by its own delay.
      const dl = Math.floor(p.deadlineAtMs - this.#clock.now());
      if (dl <= 0) {
        this.#finish(p, { ok: false, error: new LinkError('DOSIS_ERR_DEADLINE', `${p.name}: deadline passed after ${p.attempts} transmissions`) });
        return;
      }
      p.line = encodeFrame({ kind: 'C', seq: p.seq, body: encodeCommand({ ...p.cmd, dl } as Command) });
    }
    p.attempts++;
    if (p.attempts > 1) this.stats.retransmits++;
    this.stats.framesOut++;
    this.#transport.write(p.line);
    this.#clock.clearTimeout(p.timer);
    p.timer = this.#clock.setTimeout(() => {
      p.timer = undefined;
      if (this.#outstanding.get(p.seq) !== p) return;
      if (p.attempts >= this.#maxAttempts) {
        this.stats.timeouts++;
        this.#finish(p, { ok: false, error: new LinkError('DOSIS_ERR_LINK_TIMEOUT', `${p.name} unanswered after ${p.attempts} transmissions`) });
      } else this.#transmit(p);
    }, this.#backoffMs(p));
  }

  #finish(p: Pending, r: SendResult<CommandName>): void {
    this.#clock.clearTimeout(p.timer);
    this.#outstanding.delete(p.seq);
    p.cb(r);
    this.#pump();
  }

  #failAll(code: LinkErrorCode, message: string): void {
    const all = [...this.#outstanding.values(), ...this.#queue.splice(0)];
    this.#outstanding.clear();
    for (const p of all) {
      this.#clock.clearTimeout(p.timer);
      p.cb({ ok: false, error: new LinkError(code, `${p.name}: ${message}`) });
    }
  }

  #writeFrame(kind: FrameKind, seq: number, body: string): void {
    if (!this.#transport) return;
    this.stats.framesOut++;
    this.#transport.write(encodeFrame({ kind, seq, body }));
  }

  // ------------------------------------------------------------ receiving

  #onLine(line: string): void {
    this.#heartbeatLast = false;
    const d = decodeFrame(line);
    if (!d.ok) {
      if (d.reason === 'empty') return;
      this.stats.rejected[d.reason] = (this.stats.rejected[d.reason] ?? 0) + 1;
      this.#log.debug({ reason: d.reason, detail: d.detail }, 'line rejected');
      this.#nak(d.reason);
      return;
    }
    this.stats.framesIn++;
    this.#lastRxMs = this.#clock.now();
    const { kind, seq, body } = d.frame;
    switch (kind) {
      case 'A':
        this.#onAck(seq, body);
        break;
      case 'N': {
        this.stats.naksIn++;
        // The MCU lost one of our frames: resend the oldest unanswered one now rather than at its timeout.
        const oldest = this.#outstanding.values().next().value;
        if (oldest) this.#transmit(oldest);
        break;
      }
      case 'E':
        this.#onEvent(seq, body);
        break;
      case 'H': {
        // An idle MCU sends the same heartbeat body every second: it is parsed once.
        let hb = this.#lastHeartbeat;
        if (hb?.body !== body) {
          const r = decodeHeartbeat('mcu', body);
          if (!r.ok) {
            this.stats.badBodies++;
            return;
          }
          hb = this.#lastHeartbeat = { body, value: Object.freeze(r.value) };
        }
        if (this.#hello && hb.value.boot !== this.#hello.boot) this.#reportReset(this.#hello.boot, hb.value.boot);
        this.#emitter.emit('heartbeat', hb.value);
        this.#heartbeatLast = true;
        break;
      }
      case 'C':
        // The MCU never commands the host.
        this.stats.badBodies++;
        break;
    }
  }

  #nak(reason: FrameRejection): void {
    const now = this.#clock.now();
    if (now - this.#lastNakMs < NAK_GAP_MS) return;
    this.#lastNakMs = now;
    this.stats.naksOut++;
    this.#writeFrame('N', this.#nakCount, reason);
    this.#nakCount = nextSeq(this.#nakCount);
  }

  #onAck(seq: number, body: string): void {
    const p = this.#outstanding.get(seq);
    if (!p) {
      this.stats.strayAcks++;
      return;
    }
    const ack = decodeAck(p.name, body);
    if (!ack.ok) {
      this.stats.badBodies++;
      this.#finish(p, { ok: false, error: new LinkError('DOSIS_ERR_LINK_PROTOCOL', `${p.name}: malformed ack: ${ack.detail}`) });
      return;
    }
    if (ack.value.result === 'ERR:HELLO' && p.name !== 'HELLO') {
      // The MCU reset since our hello and ran nothing of it: everything outstanding was sent to its earlier boot.
      this.#log.warn({ name: p.name }, 'MCU answered ERR:HELLO: it reset; saying hello again');
      this.#failAll('DOSIS_ERR_MCU_RESET', 'the MCU reset since the last hello (ERR:HELLO)');
      if (this.#state === 'ready') this.#setState('connecting');
      this.#sendHello();
      return;
    }
    this.#finish(p, { ok: true, ack: ack.value });
  }

  #onEvent(seq: number, body: string): void {
    const ev = decodeEvent(body);
    if (!ev.ok) {
      this.stats.badBodies++;
      this.#log.warn({ reason: ev.reason, detail: ev.detail }, 'event does not fit the catalogue');
      // Answer it, so that the MCU stops resending what we can never take.
      this.#writeFrame('A', seq, ev.reason === 'unknown_message' ? 'ERR:UNKNOWN' : 'ERR:BAD_FIELD');
      return;
    }
    this.#writeFrame('A', seq, 'OK');
    if (ev.value.name === 'BOOT') {
      if (this.#hello && ev.value.boot !== this.#hello.boot) this.#reportReset(this.#hello.boot, ev.value.boot);
    }
    if (this.#dedup.seen(seq, body, this.#clock.now())) {
      this.stats.duplicates++;
      return;
    }
    this.#emitter.emit('event', ev.value);
  }

  /** The MCU came back with another boot id (a BOOT event or heartbeat): its RAM, seq window and unacked events are gone. */
  #reportReset(previousBootId: string, bootId: string): void {
    if (!this.#hello || this.#hello.boot !== previousBootId) return; // reported once per new boot id
    this.#resetSeen(previousBootId, bootId);
    this.#hello = { ...this.#hello, boot: bootId };
    if (this.#state === 'ready') this.#setState('connecting');
    this.#sendHello();
  }

  /**
   * Nothing outstanding is transmitted again to the new boot: each command fails with DOSIS_ERR_MCU_RESET and its
   * sender asks the MCU (QUERY) what became of it. (The MCU also refuses every command before a new HELLO.)
   */
  #resetSeen(previousBootId: string, bootId: string): void {
    this.stats.resets++;
    this.#log.warn({ previousBootId, bootId }, 'MCU reset');
    this.#dedup.clear();
    this.#failAll('DOSIS_ERR_MCU_RESET', `MCU reset (boot ${previousBootId} → ${bootId})`);
    this.#emitter.emit('mcuReset', { previousBootId, bootId });
  }

  #setState(s: LinkState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#emitter.emit('state', s);
  }
}


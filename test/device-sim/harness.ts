// Test harness: a hand-written host on the far end of an in-memory wire to a DeviceSimulator.

import pino from 'pino';
import { ManualClock } from '../../protocol/src/clock.js';
import { createMemoryWire, type Transport } from '../../protocol/src/transport.js';
import { decodeFrame, encodeFrame, type Frame } from '../../protocol/src/frame.js';
import { CATALOGUE_HASH, PROTOCOL_VERSION } from '../../protocol/src/catalogue.js';
import { loadProfile, type HardwareProfile } from '../../hardware/src/profile.js';
import { DeviceSimulator, type SimPouch } from '../../device-sim/src/simulator.js';
import type { FaultRates } from '../../device-sim/src/faults.js';

export type Rx = { atMs: number; raw: string; frame?: Frame };

export class Host {
  readonly clock = new ManualClock();
  readonly profile: HardwareProfile = loadProfile('dosis-r1');
  readonly sim: DeviceSimulator;
  readonly end: Transport;
  readonly rx: Rx[] = [];
  #seq = 0;
  readonly #autoHello: boolean;
  /** The boot the harness last said HELLO to. */
  #helloBoot: string | undefined;
  /** Ack every event the sim sends, as a real host would. */
  autoAck = true;

  constructor(opts: { seed?: number; faults?: Partial<FaultRates>; pouches?: SimPouch[]; hello?: boolean } = {}) {
    const [host, dev] = createMemoryWire(this.clock, { baudRate: this.profile.baudRate });
    this.end = host;
    host.onLine((raw) => {
      const r = decodeFrame(raw);
      this.rx.push({ atMs: this.clock.now(), raw, ...(r.ok ? { frame: r.frame } : {}) });
      if (r.ok && r.frame.kind === 'E' && this.autoAck) this.raw(encodeFrame({ kind: 'A', seq: r.frame.seq, body: 'OK' }));
    });
    this.sim = new DeviceSimulator({
      clock: this.clock, transport: dev, profile: this.profile, seed: opts.seed ?? 1,
      faults: opts.faults ?? {}, logger: pino({ level: 'silent' }),
    });
    this.sim.loadPouches(opts.pouches ?? demoPouches(this.profile.slotCount, 3));
    this.#autoHello = opts.hello ?? true;
  }

  raw(line: string): void {
    this.end.write(line);
  }

  /**
   * Sends a command with the next seq (or the given one); returns the seq. The MCU runs nothing before a HELLO since its
   * power-up: unless told otherwise, a HELLO on seq 255 (which the tests leave alone) goes first to each new boot.
   */
  cmd(body: string, seq?: number): number {
    if (this.#autoHello && this.#helloBoot !== this.sim.bootId && !/^(HELLO|SIM|FAULT)\b/.test(body)) {
      this.#helloBoot = this.sim.bootId;
      this.raw(encodeFrame({ kind: 'C', seq: 255, body: `HELLO,v=${PROTOCOL_VERSION},cat=${CATALOGUE_HASH}` }));
    }
    const s = seq ?? this.#seq;
    if (seq === undefined) this.#seq = (this.#seq + 1) % 256;
    this.raw(encodeFrame({ kind: 'C', seq: s, body }));
    return s;
  }

  hello(): number {
    return this.cmd(`HELLO,v=${PROTOCOL_VERSION},cat=${CATALOGUE_HASH}`);
  }

  heartbeat(): void {
    this.raw(encodeFrame({ kind: 'H', seq: this.#seq, body: 'HB' }));
    this.#seq = (this.#seq + 1) % 256;
  }

  run(ms: number): void {
    this.clock.advance(ms);
  }

  frames(kind?: string): Frame[] {
    return this.rx.flatMap((r) => (r.frame && (!kind || r.frame.kind === kind) ? [r.frame] : []));
  }

  acks(seq: number): string[] {
    return this.frames('A').filter((f) => f.seq === seq).map((f) => f.body);
  }

  /** Runs until an ack for seq arrives; returns its body. */
  ack(seq: number, limitMs = 1000): string {
    this.clock.runUntil(() => this.acks(seq).length > 0, limitMs);
    const a = this.acks(seq)[0];
    if (a === undefined) throw new Error(`no ack for seq ${seq}`);
    return a;
  }

  events(name?: string): string[] {
    return this.frames('E').map((f) => f.body).filter((b) => !name || b.split(',')[0] === name);
  }

  /** Runs (sending host heartbeats to keep leases) until an event with this name (and count) arrives. */
  waitEvent(name: string, count = 1, limitMs = 20_000): string {
    const end = this.clock.now() + limitMs;
    while (this.clock.now() < end && this.distinctEvents(name).length < count) {
      this.heartbeat();
      this.clock.advance(250);
    }
    const e = this.distinctEvents(name)[count - 1];
    if (e === undefined) throw new Error(`no ${name} event #${count}; got ${this.events().join(' | ')}`);
    return e;
  }

  /** Event bodies without retransmissions (same seq and body; seqs restart at a reset). */
  distinctEvents(name: string): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const f of this.frames('E')) {
      const key = `${f.seq}|${f.body}`;
      if (f.body.split(',')[0] !== name || seen.has(key)) continue;
      seen.add(key);
      out.push(f.body);
    }
    return out;
  }
}

export function demoPouches(slotCount: number, pills: number): SimPouch[] {
  return Array.from({ length: slotCount }, (_, slot) => ({ slot, label: `DEMO-${String(slot + 1).padStart(3, '0')}`, pills }));
}

export function field(body: string, key: string): string | undefined {
  for (const part of body.split(',').slice(1)) {
    const [k, v] = part.split('=');
    if (k === key) return v;
  }
  return undefined;
}

// The byte pipe under the link: one interface for a serial port and for the in-memory wire, so neither side knows which it has.

import type { Clock, TimerHandle } from './clock.js';

/**
 * A full-duplex line transport. `write` sends raw text (a frame line, `\n`
 * included); received bytes are split on `\n` and handed over one line at a
 * time, without the terminator, read as latin1 so that one byte is one char.
 * Every callback is called synchronously from the transport's I/O (a serial
 * port's data event, or a clock timer for the in-memory wire).
 */
export interface Transport {
  readonly isOpen: boolean;
  write(data: string): void;
  onLine(handler: (line: string) => void): void;
  /** Called once when the transport closes or the device disappears (unplug). */
  onClose(handler: (reason: string) => void): void;
  close(reason?: string): void;
}

/** Splits a byte stream into lines; a line longer than `maxLength` is cut and passed on (the decoder rejects it). */
export class LineSplitter {
  #buffer = '';
  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLength = 1024,
  ) {}

  push(chunk: string): void {
    // The common case: one whole line, nothing buffered.
    if (this.#buffer === '' && chunk.indexOf('\n') === chunk.length - 1) {
      this.emit(chunk.slice(0, -1));
      return;
    }
    let data = this.#buffer + chunk;
    let nl = data.indexOf('\n');
    while (nl >= 0) {
      this.emit(data.slice(0, nl));
      data = data.slice(nl + 1);
      nl = data.indexOf('\n');
    }
    if (data.length > this.maxLength) {
      this.emit(data);
      data = '';
    }
    this.#buffer = data;
  }
}

export type MemoryWireOptions = {
  /** Line speed: a byte takes 10 bit times (8N1). */
  baudRate?: number;
  /** Extra fixed delay per write, ms (USB-serial latency). */
  latencyMs?: number;
};

class MemoryEndpoint implements Transport {
  #open = true;
  #peer: MemoryEndpoint | undefined;
  #lineHandlers: ((line: string) => void)[] = [];
  #closeHandlers: ((reason: string) => void)[] = [];
  #busyUntilMs = 0;
  readonly #splitter = new LineSplitter((line) => {
    const handlers = this.#lineHandlers;
    for (let i = 0; i < handlers.length; i++) handlers[i]!(line);
  });
  /** Writes on their way to the peer, oldest first: each arrives after the one before (one line, one byte at a time). */
  readonly #inFlight: TimerHandle[] = [];
  readonly #inFlightData: string[] = [];
  #inFlightHead = 0;
  readonly #arriveNext = () => this.#arrive();

  constructor(
    private readonly clock: Clock,
    private readonly byteMs: number,
    private readonly latencyMs: number,
  ) {}

  connect(peer: MemoryEndpoint): void {
    this.#peer = peer;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Writes still on their way to the peer. */
  get inFlight(): number {
    return this.#inFlight.length - this.#inFlightHead;
  }

  /** How long a line of `bytes` written to an idle wire takes to arrive, ms. */
  transitMs(bytes: number): number {
    return bytes * this.byteMs + this.latencyMs;
  }

  write(data: string): void {
    const peer = this.#peer;
    if (!this.#open || !peer) return;
    // Bytes leave one after another: a write waits for the previous one to finish.
    const start = Math.max(this.clock.now(), this.#busyUntilMs);
    this.#busyUntilMs = start + data.length * this.byteMs;
    this.#inFlight.push(this.clock.setTimeout(this.#arriveNext, this.#busyUntilMs + this.latencyMs - this.clock.now()));
    this.#inFlightData.push(data);
  }

  #arrive(): void {
    // Arrivals come in the order of the writes, so the one arriving is the oldest in flight.
    const data = this.#inFlightData[this.#inFlightHead]!;
    if (++this.#inFlightHead > 64 && this.#inFlightHead * 2 > this.#inFlight.length) {
      this.#inFlight.splice(0, this.#inFlightHead);
      this.#inFlightData.splice(0, this.#inFlightHead);
      this.#inFlightHead = 0;
    }
    const peer = this.#peer;
    if (peer && peer.#open) peer.#splitter.push(data);
  }

  onLine(handler: (line: string) => void): void {
    this.#lineHandlers.push(handler);
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandlers.push(handler);
  }

  close(reason = 'closed'): void {
    if (!this.#open) return;
    this.#open = false;
    for (let i = this.#inFlightHead; i < this.#inFlight.length; i++) this.clock.clearTimeout(this.#inFlight[i]);
    this.#inFlight.length = 0;
    this.#inFlightData.length = 0;
    this.#inFlightHead = 0;
    for (const h of this.#closeHandlers) h(reason);
    this.#peer?.close(reason === 'closed' ? 'peer closed' : reason);
  }
}

/** One end of an in-memory wire. */
export type MemoryTransport = Transport & { readonly inFlight: number; transitMs(bytes: number): number };

/** Two connected in-memory endpoints with serial-line timing on the given clock: [host side, device side]. */
export function createMemoryWire(clock: Clock, options: MemoryWireOptions = {}): [MemoryTransport, MemoryTransport] {
  const byteMs = 10_000 / (options.baudRate ?? 115_200);
  const latency = options.latencyMs ?? 1;
  const a = new MemoryEndpoint(clock, byteMs, latency);
  const b = new MemoryEndpoint(clock, byteMs, latency);
  a.connect(b);
  b.connect(a);
  return [a, b];
}

// Device faults the alarm centre hears about: a latched MCU, a serial link lost for too long, an error in the controller.
//
// Each source has at most one open fault. Raising one writes `device_fault`
// to the event log and the outbox in one transaction and remembers it in the
// store, so a restarted robot still knows it is open and sends `fault_cleared`
// once the cause is gone (the link back, the MCU no longer latched, a run
// without a controller error for CONTROLLER_FAULT_CLEAR_MS). Event ids
// carry the source and the instant, so every retry of one report is the same
// event. The MCU's latch is read from its heartbeats and LATCHED events; the
// link from its state changes; a controller error is final (see robot.ts).

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../protocol/src/clock.js';
import type { DeviceEvent, McuHeartbeat } from '../../protocol/src/catalogue.js';
import type { DeviceLink, LinkState } from './link/link.js';
import type { Store } from './store/store.js';

export const FAULT_SOURCES = ['mcu', 'link', 'controller'] as const;
export type FaultSource = (typeof FAULT_SOURCES)[number];

/** A serial link down for longer than this is a device fault (a reconnect within it is not). */
export const LINK_LOST_FAULT_MS = 120_000;
/**
 * A controller error ends the run that had it; the fault is cleared once a later run has kept going this long, so a
 * robot that fails again at every restart keeps one open fault at the centre instead of raising and clearing it.
 */
export const CONTROLLER_FAULT_CLEAR_MS = 600_000;

export type OpenFault = { source: FaultSource; reason: string; sinceMs: number };

export type FaultWatchOptions = { store: Store; link: DeviceLink; clock: Clock; logger: Logger; linkLostAfterMs?: number };

const metaKey = (s: FaultSource) => `fault_open_${s}`;

export class FaultWatch {
  readonly #o: FaultWatchOptions;
  readonly #linkLostAfterMs: number;
  readonly #open = new Map<FaultSource, OpenFault>();
  readonly #listeners = new Set<() => void>();
  #linkTimer: TimerHandle | undefined;
  #controllerTimer: TimerHandle | undefined;
  #running = false;
  readonly #onState = (s: LinkState) => this.#linkState(s);
  readonly #onHeartbeat = (hb: Readonly<McuHeartbeat>) => this.#mcuState(hb.st === 'latched', 'latched');
  readonly #onEvent = (e: DeviceEvent) => {
    if (e.name === 'LATCHED') this.#mcuState(true, e.reason);
  };

  constructor(opts: FaultWatchOptions) {
    this.#o = opts;
    this.#linkLostAfterMs = opts.linkLostAfterMs ?? LINK_LOST_FAULT_MS;
    for (const source of FAULT_SOURCES) {
      const raw = opts.store.getMeta(metaKey(source));
      if (raw) this.#open.set(source, JSON.parse(raw) as OpenFault);
    }
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const { link } = this.#o;
    link.on('state', this.#onState);
    link.on('heartbeat', this.#onHeartbeat);
    link.on('event', this.#onEvent);
    if (this.#open.has('controller')) {
      this.#controllerTimer = this.#o.clock.setTimeout(() => {
        if (this.#running) this.clear('controller');
      }, CONTROLLER_FAULT_CLEAR_MS);
    }
    this.#linkState(link.state);
  }

  stop(): void {
    this.#running = false;
    const { link } = this.#o;
    link.off('state', this.#onState);
    link.off('heartbeat', this.#onHeartbeat);
    link.off('event', this.#onEvent);
    this.#o.clock.clearTimeout(this.#linkTimer);
    this.#linkTimer = undefined;
    this.#o.clock.clearTimeout(this.#controllerTimer);
    this.#controllerTimer = undefined;
  }

  /** The faults open now. */
  open(): OpenFault[] {
    return [...this.#open.values()];
  }

  has(source: FaultSource): boolean {
    return this.#open.has(source);
  }

  /** Called after a fault was raised or cleared. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Opens a fault of `source` (no-op while one is open) and queues `device_fault`; returns whether it was new. */
  raise(source: FaultSource, reason: string, detail: Record<string, string | number | boolean | null> = {}): boolean {
    if (this.#open.has(source)) return false;
    const { store, clock } = this.#o;
    const now = Math.floor(clock.now());
    const fault: OpenFault = { source, reason, sinceMs: now };
    store.db.transaction(() => {
      store.alarm(`${source}:device_fault:${now}`, 'device_fault', null, { source, reason, ...detail });
      store.setMeta(metaKey(source), JSON.stringify(fault));
    })();
    this.#open.set(source, fault);
    this.#o.logger.warn({ source, reason }, 'device fault: the alarm centre is told');
    this.#changed();
    return true;
  }

  /** Closes the open fault of `source`, if any, and queues `fault_cleared`. */
  clear(source: FaultSource): void {
    const fault = this.#open.get(source);
    if (!fault) return;
    const { store, clock } = this.#o;
    const now = Math.floor(clock.now());
    store.db.transaction(() => {
      store.alarm(`${source}:fault_cleared:${now}`, 'fault_cleared', null, { source, reason: fault.reason, openForMs: Math.max(0, now - fault.sinceMs) });
      store.setMeta(metaKey(source), '');
    })();
    this.#open.delete(source);
    this.#o.logger.info({ source, reason: fault.reason }, 'device fault cleared: the alarm centre is told');
    this.#changed();
  }

  #linkState(s: LinkState): void {
    if (!this.#running) return;
    if (s === 'ready') {
      this.#o.clock.clearTimeout(this.#linkTimer);
      this.#linkTimer = undefined;
      this.clear('link');
      return;
    }
    if (this.#linkTimer || this.#open.has('link')) return;
    this.#linkTimer = this.#o.clock.setTimeout(() => {
      this.#linkTimer = undefined;
      if (this.#running && this.#o.link.state !== 'ready') this.raise('link', 'link_lost', { forMs: this.#linkLostAfterMs });
    }, this.#linkLostAfterMs);
  }

  #mcuState(latched: boolean, reason: string): void {
    if (!this.#running) return;
    if (latched) this.raise('mcu', reason);
    else this.clear('mcu');
  }

  #changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#o.logger.error({ err }, 'fault listener failed');
      }
    }
  }
}

// The soak's coalesced mode: a virtual clock that skips the heartbeats of an idle link and MCU in one step.
//
// About nine in ten wire lines of a soak are idle heartbeats, most of them while
// a dose waits for a citizen who forgot it. When host and MCU both exchange
// nothing but heartbeats (nothing outstanding, nothing unacked, no motion, no
// latch, nothing on the wire) and the MCU's next heartbeat says what its last one
// said, the rounds that fall before the next other timer are accounted at once:
// the seqs they would use, the link's silence watchdog and the MCU's last-heard
// time as they would be after them, and the wire's fault draws they would use up.
// The simulator draws its per-line faults as gaps between hits (the same odds), so
// the round that holds the next faulted line is known and played for real, as is
// every round that comes too close to another timer or to the end of the wait
// under way (after which the episode may act on the world between two timers). The
// host's store watch (a look for other processes' commits every few seconds) is
// skipped with them while its looks would find nothing: nothing else commits
// before the next other timer. Neither side gets a branch
// of its own: the link, the controller and the simulator only say when they are idle and account
// the rounds they are told were exchanged. `dosis soak --exact` plays every line.

import { ManualClock } from '../../../protocol/src/clock.js';
import type { MemoryTransport } from '../../../protocol/src/transport.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import type { Controller } from '../../../firmware-host/src/controller.js';
import { heartbeatBytesAt, type DeviceSimulator } from '../simulator.js';
import { SEQ_MODULO } from '../../../protocol/src/frame.js';

export type CoastParts = {
  sim: DeviceSimulator;
  /** The live host's link (undefined while the host is down). */
  link: () => DeviceLink | undefined;
  /** Both sides' heartbeat period, ms. */
  heartbeatMs: number;
  /** The live host's store watch (undefined while the host is down, or when its store is private). */
  watch?: () => Pick<Controller, 'idleWatch' | 'coastWatch'> | undefined;
};

export class CoastingClock extends ManualClock {
  #parts: CoastParts | undefined;
  #wire: readonly [MemoryTransport, MemoryTransport] | undefined;
  /** Heartbeat rounds skipped so far (a test's and a bench's figure). */
  coastedRounds = 0;
  /**
   * The end of the runUntil() under way: it may stop there between two timers, and its caller then acts on the world
   * (the citizen, the care staff), so no round is skipped past it.
   */
  #horizonMs = Infinity;

  coastOver(parts: CoastParts): void {
    this.#parts = parts;
  }

  /** The cable now in use: [host side, MCU side]. */
  set wire(ends: readonly [MemoryTransport, MemoryTransport]) {
    this.#wire = ends;
  }

  override runUntil(done: () => boolean, limitMs = 24 * 3600_000): boolean {
    const outer = this.#horizonMs;
    this.#horizonMs = this.now() + limitMs;
    try {
      return super.runUntil(done, limitMs);
    } finally {
      this.#horizonMs = outer;
    }
  }

  override nextAtMs(): number | undefined {
    const at = super.nextAtMs();
    if (at === undefined || !this.#parts || !this.#coast(at, this.#parts)) return at;
    return super.nextAtMs();
  }

  /** Skips the idle heartbeat rounds before the next other timer when the next timer is a heartbeat; whether it did. */
  #coast(at: number, parts: CoastParts): boolean {
    const link = parts.link();
    const l = link?.idleHeartbeat();
    if (!link || !l || (at !== l.atMs && at !== parts.sim.heartbeatAtMs)) return false;
    const s = parts.sim.quietHeartbeat();
    if (!s || at !== Math.min(l.atMs, s.atMs) || s.body !== l.mcuBody) return false;
    const wire = this.#wire;
    if (!wire || wire[0].inFlight > 0 || wire[1].inFlight > 0) return false;
    // The host's store watch, when its looks would find nothing, only re-arms itself: its looks in the span are skipped too.
    // Asked only when its next look is the next other timer (whether a look would find nothing costs a query).
    const other = this.nextAtMsExcept([l.timer, s.timer]) ?? Infinity;
    const w = other <= this.#horizonMs ? parts.watch?.()?.idleWatch(other + 1) : undefined;
    const until = Math.min((w ? this.nextAtMsExcept([l.timer, s.timer, w.timer]) : other) ?? Infinity, this.#horizonMs);
    if (until === Infinity) return false;
    const P = parts.heartbeatMs;
    // Round k: the host's heartbeat out at l.atMs + kP and in at the MCU a line's transit later, the MCU's likewise; all
    // four before `until` (with the longest seq's transit, so no round is taken that might reach past it).
    const room = until - Math.max(l.atMs + wire[0].transitMs(l.lineBytes + 2), s.atMs + wire[1].transitMs(s.lineBytes + 2));
    if (room <= 0) return false;
    const rounds = parts.sim.cleanHeartbeatRounds(Math.ceil(room / P), l);
    if (rounds <= 0) return false;
    const last = rounds - 1;
    const toHostMs = wire[1].transitMs(heartbeatBytesAt(s.lineBytes, (s.seq + last) % SEQ_MODULO));
    const toMcuMs = wire[0].transitMs(heartbeatBytesAt(l.lineBytes, (l.seq + last) % SEQ_MODULO));
    link.coastHeartbeats(rounds, s.atMs + last * P + toHostMs);
    parts.sim.coastHeartbeats(rounds, l, l.atMs + last * P + toMcuMs);
    if (w) {
      // The looks that fall before the next heartbeat played and the next other timer: nothing else runs before them.
      const nextMs = Math.min(Math.min(l.atMs, s.atMs) + rounds * P, until);
      if (nextMs > w.atMs) parts.watch!()!.coastWatch(Math.ceil((nextMs - w.atMs) / w.everyMs));
    }
    this.coastedRounds += rounds;
    return true;
  }
}

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
// host's periodic timers are skipped with them while idle: the store watch (a look
// for other processes' commits every few seconds) while its looks would find
// nothing, the running mark (its last refresh overwrites the ones before). Neither side gets a branch
// of its own: the link, the controller and the simulator only say when they are idle and account
// the rounds they are told were exchanged. `dosis soak --exact` plays every line.

import { ManualClock, type IdleTicks, type TimerHandle } from '../../../protocol/src/clock.js';
import type { MemoryTransport } from '../../../protocol/src/transport.js';
import type { DeviceLink } from '../../../firmware-host/src/link/link.js';
import type { HostProcess } from './host.js';
import { heartbeatBytesAt, type DeviceSimulator } from '../simulator.js';
import { SEQ_MODULO } from '../../../protocol/src/frame.js';

export type CoastParts = {
  sim: DeviceSimulator;
  /** The live host's link (undefined while the host is down). */
  link: () => DeviceLink | undefined;
  /** Both sides' heartbeat period, ms. */
  heartbeatMs: number;
  /** The live host (undefined while it is down): its store watch and running mark tick on their own when idle. */
  host?: () => Pick<HostProcess, 'controller' | 'robot'> | undefined;
};

type Periodic = { idle: (beforeMs: number) => IdleTicks | undefined; coast: (ticks: number) => void };

/** The host's periodic timers that can be skipped: the store watch (a look for other processes' commits), the running mark. */
function periodicOf(h: Pick<HostProcess, 'controller' | 'robot'>): Periodic[] {
  const c = h.controller;
  const out: Periodic[] = [{ idle: (b) => c.idleWatch(b), coast: (n) => c.coastWatch(n) }];
  const p = h.robot.power;
  if (p) out.push({ idle: (b) => p.idleRefresh(b), coast: (n) => p.coastRefresh(n) });
  return out;
}

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
    // The host's idle periodic timers are skipped with the heartbeats: each is asked only when it is the next other
    // timer (whether the store watch's look would find nothing costs a query).
    const skip: TimerHandle[] = [l.timer, s.timer];
    const skipped: { p: Periodic; t: IdleTicks }[] = [];
    let other = this.nextAtMsExcept(skip) ?? Infinity;
    const host = other <= this.#horizonMs ? parts.host?.() : undefined;
    const periodic = host ? periodicOf(host) : [];
    while (other <= this.#horizonMs && periodic.length > 0) {
      let t: IdleTicks | undefined;
      const i = periodic.findIndex((p) => (t = p.idle(other + 1)) !== undefined);
      if (i < 0) break;
      skipped.push({ p: periodic[i]!, t: t! });
      skip.push(t!.timer);
      periodic.splice(i, 1);
      other = this.nextAtMsExcept(skip) ?? Infinity;
    }
    const until = Math.min(other, this.#horizonMs);
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
    // The periodic ticks that fall before the next heartbeat played and the next other timer: nothing else runs before them.
    const nextMs = Math.min(Math.min(l.atMs, s.atMs) + rounds * P, until);
    for (const { p, t } of skipped) if (nextMs > t.atMs) p.coast(Math.ceil((nextMs - t.atMs) / t.everyMs));
    this.coastedRounds += rounds;
    return true;
  }
}

// Pharmacy login sessions: in memory (a restart logs staff out), expiring on the injected clock.
//
// A session lasts while it is used (idle limit) but never longer than a
// shift-length absolute limit. Expired sessions are dropped when looked up or
// when a new one is made, so no timer is needed.

import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../../protocol/src/clock.js';

export type Session = {
  staffId: string;
  createdAtMs: number;
  expiresAtMs: number;
  /** sha256 of the manifest the staff last validated in this session: loading requires the same text (the confirm step). */
  validatedManifestSha256: string | null;
  /** Whether that validation was with the loaded roll's pending pouches taken back: the load must say the same. */
  validatedReturnPending: boolean;
};

export type SessionOptions = { idleMs?: number; absoluteMs?: number; maxSessions?: number };

export class SessionStore {
  readonly #clock: Clock;
  readonly #idleMs: number;
  readonly #absoluteMs: number;
  readonly #max: number;
  // Keyed by a hash of the token, so a heap dump does not hand out live cookies.
  readonly #sessions = new Map<string, Session>();

  constructor(clock: Clock, opts: SessionOptions = {}) {
    this.#clock = clock;
    this.#idleMs = opts.idleMs ?? 10 * 60_000;
    this.#absoluteMs = opts.absoluteMs ?? 8 * 3600_000;
    this.#max = opts.maxSessions ?? 32;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** Starts a session; returns the token for the cookie. */
  create(staffId: string): { token: string; session: Session } {
    this.#prune();
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const now = this.#clock.now();
    const session: Session = { staffId, createdAtMs: now, expiresAtMs: now + this.#idleMs, validatedManifestSha256: null, validatedReturnPending: false };
    this.#sessions.set(key(token), session);
    return { token, session };
  }

  /** The live session for a token, its idle expiry pushed forward; undefined when absent or expired. */
  touch(token: string | undefined): Session | undefined {
    if (!token) return undefined;
    const k = key(token);
    const s = this.#sessions.get(k);
    if (!s) return undefined;
    const now = this.#clock.now();
    if (now >= s.expiresAtMs) {
      this.#sessions.delete(k);
      return undefined;
    }
    s.expiresAtMs = Math.min(now + this.#idleMs, s.createdAtMs + this.#absoluteMs);
    return s;
  }

  end(token: string | undefined): void {
    if (token) this.#sessions.delete(key(token));
  }

  get size(): number {
    this.#prune();
    return this.#sessions.size;
  }

  #prune(): void {
    const now = this.#clock.now();
    for (const [k, s] of this.#sessions) if (now >= s.expiresAtMs) this.#sessions.delete(k);
  }
}

function key(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

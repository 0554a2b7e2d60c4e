// Device credentials (secrets encrypted at rest), operator accounts (scrypt) and sessions.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, scryptSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Db } from './database.js';
import { badRequest, conflict } from '../errors.js';
import { isDeviceId } from '../../../protocol/src/centre/contract.js';

export const ROLES = ['operator', 'supervisor', 'admin'] as const;
export type Role = (typeof ROLES)[number];
const ROLE_RANK: Record<Role, number> = { operator: 1, supervisor: 2, admin: 3 };
export const roleAtLeast = (role: Role, min: Role) => ROLE_RANK[role] >= ROLE_RANK[min];

/** The file beside the database that holds the key, when no key is configured; a backup is useless without it. */
export const secretKeyPath = (dbPath: string) => `${dbPath}.key`;

/**
 * The key that encrypts device secrets. HMAC verification needs the secret itself,
 * so it cannot be stored as a one-way hash; it is AES-256-GCM encrypted with a key
 * kept outside the database: from config/DOSIS_ALARM_KEY, else a `<db>.key` file (mode 0600).
 */
export function loadSecretKey(dbPath: string, keyHex?: string): Buffer {
  const given = keyHex ?? process.env.DOSIS_ALARM_KEY;
  if (given) {
    if (!/^[0-9a-fA-F]{64}$/.test(given)) throw badRequest('secret key must be 64 hex digits');
    return Buffer.from(given, 'hex');
  }
  if (dbPath === ':memory:') return randomBytes(32);
  const file = secretKeyPath(dbPath);
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex'), { mode: 0o600 });
  return key;
}

function encrypt(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return [iv, c.getAuthTag(), body].map((b) => b.toString('base64')).join('.');
}

function decrypt(key: Buffer, enc: string): string {
  const [iv, tag, body] = enc.split('.').map((s) => Buffer.from(s, 'base64'));
  const d = createDecipheriv('aes-256-gcm', key, iv!);
  d.setAuthTag(tag!);
  return Buffer.concat([d.update(body!), d.final()]).toString('utf8');
}


/** Registers a device and returns its secret: the only time the secret is ever shown. */
export function registerDevice(db: Db, key: Buffer, deviceId: string, nowMs: number): string {
  if (!isDeviceId(deviceId)) throw badRequest('device id: 1-64 of A-Z a-z 0-9 _ -');
  const secret = randomBytes(32).toString('base64url');
  db.transaction(() => {
    const exists = db.prepare('SELECT 1 FROM devices WHERE id = ?').get(deviceId);
    if (exists) throw conflict(`device ${deviceId} is already registered`);
    db.prepare('INSERT INTO devices (id, secret_enc, registered_at_ms) VALUES (?, ?, ?)').run(deviceId, encrypt(key, secret), nowMs);
    db.prepare(`INSERT INTO audit (at_ms, actor, action, device_id) VALUES (?, 'system', 'device.registered', ?)`).run(nowMs, deviceId);
  })();
  for (const cache of secretCaches.get(db) ?? []) cache.forget(deviceId);
  return secret;
}

const secretCaches = new WeakMap<Db, Set<DeviceSecrets>>();

/** A decrypted secret, as text and as the HMAC key it makes, with the ciphertext it came from. */
export type SecretEntry = { enc: string; secret: string; key: KeyObject; epoch: number };

/**
 * Decrypted device secrets, least recently used dropped first. An entry is used without reading the database while
 * nothing but this process has written to it: each group of device writes checks for other connections' commits in
 * its transaction (store/group-commit.ts), and after one, every entry is read again before it is trusted. A request
 * verified with a secret whose ciphertext has since changed (a device registered again, by this process or another
 * on the same file) is refused in the transaction that would store it (`confirm`); registering through this database
 * handle also drops the entry at once.
 */
export class DeviceSecrets {
  readonly #key: Buffer;
  readonly #max: number;
  readonly #read: Database.Statement<[string], { secret_enc: string }>;
  readonly #entries = new Map<string, SecretEntry>();
  /** Bumped whenever another connection may have changed the devices: entries from before are read again. */
  #epoch = 0;
  /** Decryptions done (cache misses), for tests and benchmarks. */
  decrypts = 0;

  constructor(db: Db, key: Buffer, max = 65_536) {
    this.#key = key;
    this.#max = max;
    this.#read = db.prepare('SELECT secret_enc FROM devices WHERE id = ?');
    let caches = secretCaches.get(db);
    if (!caches) secretCaches.set(db, (caches = new Set()));
    caches.add(this);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Another connection committed: nothing cached is trusted until read again. */
  staleAll(): void {
    this.#epoch++;
  }

  /** The device's secret and the ciphertext it came from; `fresh` reads the database even for a trusted entry. */
  entry(deviceId: string, fresh = false): SecretEntry | undefined {
    const hit = this.#entries.get(deviceId);
    if (hit) this.#entries.delete(deviceId);
    if (hit && !fresh && hit.epoch === this.#epoch) {
      this.#entries.set(deviceId, hit);
      return hit;
    }
    const row = this.#read.get(deviceId);
    if (!row) return undefined;
    if (hit && hit.enc === row.secret_enc) {
      hit.epoch = this.#epoch;
      this.#entries.set(deviceId, hit);
      return hit;
    }
    const secret = decrypt(this.#key, row.secret_enc);
    this.decrypts++;
    const e = { enc: row.secret_enc, secret, key: createSecretKey(Buffer.from(secret, 'utf8')), epoch: this.#epoch };
    this.#entries.set(deviceId, e);
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    return e;
  }

  get(deviceId: string): string | undefined {
    return this.entry(deviceId)?.secret;
  }

  /** Inside the transaction that stores a request: whether the secret it was verified with (by its ciphertext) is still the device's. */
  confirm(deviceId: string, enc: string): boolean {
    return this.entry(deviceId)?.enc === enc;
  }

  forget(deviceId: string): void {
    this.#entries.delete(deviceId);
  }
}

export function deviceSecret(db: Db, key: Buffer, deviceId: string): string | undefined {
  const row = db.prepare('SELECT secret_enc FROM devices WHERE id = ?').get(deviceId) as { secret_enc: string } | undefined;
  return row ? decrypt(key, row.secret_enc) : undefined;
}

type SignatureStatements = {
  remember: Database.Statement<[number, Buffer]>;
  forget: Database.Statement<[number]>;
  seenBefore: Database.Statement<[string]>;
  forgetBefore: Database.Statement<[number]>;
  anyBefore: Database.Statement<[]>;
  /** used_signatures (the table before request_signatures) still holds rows from before the upgrade. */
  legacy: boolean;
};
const signatureStatements = new WeakMap<Db, SignatureStatements>();
function signatures(db: Db): SignatureStatements {
  let s = signatureStatements.get(db);
  if (!s) {
    const anyBefore = db.prepare<[]>('SELECT 1 FROM used_signatures LIMIT 1');
    s = {
      remember: db.prepare('INSERT OR IGNORE INTO request_signatures (signed_at_ms, signature) VALUES (?, ?)'),
      forget: db.prepare('DELETE FROM request_signatures WHERE signed_at_ms < ?'),
      seenBefore: db.prepare('SELECT 1 FROM used_signatures WHERE signature = ?'),
      forgetBefore: db.prepare('DELETE FROM used_signatures WHERE at_ms < ?'),
      anyBefore,
      legacy: anyBefore.get() !== undefined,
    };
    signatureStatements.set(db, s);
  }
  return s;
}

/**
 * Remembers an accepted request signature (64 lowercase hex digits, as verifyRequest accepts them) under the time the
 * device signed it, inside the caller's transaction so it is durable together with what the request wrote. False
 * when it was already seen.
 */
export function rememberSignature(db: Db, signature: string, signedAtMs: number): boolean {
  const s = signatures(db);
  if (s.legacy && s.seenBefore.get(signature)) return false;
  return s.remember.run(signedAtMs, Buffer.from(signature, 'hex')).changes === 1;
}

/**
 * Forgets signatures signed before `beforeMs` (by the key's order); returns how many. A request signed then is
 * refused as stale anyway once `beforeMs` is a window behind now.
 */
export function forgetSignaturesBefore(db: Db, beforeMs: number): number {
  const s = signatures(db);
  let n = s.forget.run(beforeMs).changes;
  if (s.legacy) {
    n += s.forgetBefore.run(beforeMs).changes;
    s.legacy = s.anyBefore.get() !== undefined;
  }
  return n;
}

function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * Password checks run in one worker thread at the lowest CPU priority (nice 19 applies to that thread alone on
 * Linux): never on the event loop, and a login flood yields the processor to the devices' requests instead of
 * competing with them. Checks queue there one after another.
 */
const CHECKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
try { require('node:os').setPriority(19); } catch {}
const pause = new Int32Array(new SharedArrayBuffer(4));
parentPort.on('message', ({ id, password, salt }) => {
  const t0 = performance.now();
  let key = null;
  try { key = scryptSync(password, Buffer.from(salt, 'base64'), 32, { N: 16384, r: 8, p: 1 }); } catch {}
  parentPort.postMessage({ id, key });
  // Rest twice as long as the check took: scrypt is memory-hard, and its cache and memory traffic slows every other
  // thread on the machine, whatever its priority. A third of the time at most keeps that within bounds during a flood.
  Atomics.wait(pause, 0, 0, 2 * (performance.now() - t0));
});
`;
let checker: Worker | undefined;
let nextCheck = 0;
const pendingChecks = new Map<number, { resolve: (key: Uint8Array | null) => void; reject: (err: Error) => void }>();

function startChecker(): Worker {
  const w = new Worker(CHECKER_SOURCE, { eval: true });
  w.unref();
  w.on('message', ({ id, key }: { id: number; key: Uint8Array | null }) => {
    pendingChecks.get(id)?.resolve(key);
    pendingChecks.delete(id);
  });
  // A checker that died answers nothing: its logins fail as errors, never as wrong passwords that would count.
  const fail = () => {
    checker = undefined;
    for (const p of pendingChecks.values()) p.reject(new Error('password checker stopped'));
    pendingChecks.clear();
  };
  w.on('error', fail);
  w.on('exit', fail);
  return w;
}

/** How many password checks are waiting (the login route turns new ones away past a bound). */
export const passwordChecksWaiting = () => pendingChecks.size;

async function checkPassword(password: string, stored: string): Promise<boolean> {
  const [, salt, hash] = stored.split('$');
  const want = Buffer.from(hash ?? '', 'base64');
  checker ??= startChecker();
  const id = ++nextCheck;
  const got = await new Promise<Uint8Array | null>((resolve, reject) => {
    pendingChecks.set(id, { resolve, reject });
    checker!.postMessage({ id, password, salt: salt ?? '' });
  });
  return got !== null && want.length === got.length && timingSafeEqual(want, got);
}

export function addOperator(db: Db, username: string, role: Role, password: string, nowMs: number): void {
  if (!/^[a-z0-9._-]{2,40}$/.test(username)) throw badRequest('username: 2-40 of a-z 0-9 . _ -');
  if (!ROLES.includes(role)) throw badRequest(`role must be one of ${ROLES.join(', ')}`);
  if (password.length < 8 || password.length > 200) throw badRequest('password: 8 to 200 characters');
  const hash = hashPassword(password);
  db.transaction(() => {
    if (db.prepare('SELECT 1 FROM operators WHERE username = ?').get(username)) throw conflict(`operator ${username} exists`);
    db.prepare('INSERT INTO operators (username, role, password_hash, created_at_ms) VALUES (?, ?, ?, ?)').run(username, role, hash, nowMs);
    db.prepare(`INSERT INTO audit (at_ms, actor, action, detail_json) VALUES (?, 'system', 'operator.added', ?)`).run(nowMs, JSON.stringify({ username, role }));
  })();
}

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** Failures allowed before the first lock; each further failure doubles the lock, up to `LOCK_MAX_MS`. */
export const LOCK_AFTER_FAILURES = 5;
export const LOCK_BASE_MS = 1_000;
export const LOCK_MAX_MS = 15 * 60_000;
/** A username's failures are forgotten after a day without one. */
const FAILURES_FORGOTTEN_MS = 24 * 3600_000;

export const lockMs = (failures: number, after = LOCK_AFTER_FAILURES) =>
  failures < after ? 0 : Math.min(LOCK_MAX_MS, LOCK_BASE_MS * 2 ** Math.min(30, failures - after));

/** Failures from one client address are counted under this key (usernames cannot contain '@'). */
const addressKey = (address: string) => `@${address}`;

export type LoginResult =
  | { ok: true; token: string; role: Role }
  | { ok: false; reason: 'wrong' }
  | { ok: false; reason: 'locked'; retryAfterMs: number };

/** Counts one failed login under `key`; returns the lock it now has (0: none), audited either way. */
function countFailure(db: Db, key: string, after: number, nowMs: number, who: Record<string, unknown>): number {
  const prev = db.prepare('SELECT failures FROM login_failures WHERE username = ?').get(key) as { failures: number } | undefined;
  const failures = (prev?.failures ?? 0) + 1;
  const lock = lockMs(failures, after);
  db.prepare(`INSERT INTO login_failures (username, failures, last_failure_at_ms, locked_until_ms) VALUES (?, ?, ?, ?)
    ON CONFLICT (username) DO UPDATE SET failures = excluded.failures, last_failure_at_ms = excluded.last_failure_at_ms, locked_until_ms = excluded.locked_until_ms`)
    .run(key, failures, nowMs, nowMs + lock);
  // Per address, only the locks are worth a line: every failure is already audited under its username.
  if (who.address !== undefined && !lock) return 0;
  const action = who.address !== undefined ? 'login.address_locked' : lock ? 'login.locked' : 'login.failed';
  db.prepare('INSERT INTO audit (at_ms, actor, action, detail_json) VALUES (?, ?, ?, ?)')
    .run(nowMs, 'system', action, JSON.stringify({ ...who, failures, ...(lock ? { lockedForMs: lock } : {}) }));
  return lock;
}

/** Until when `username` is locked out (0 when it is not). */
export function lockedUntil(db: Db, username: string): number {
  const row = db.prepare('SELECT locked_until_ms FROM login_failures WHERE username = ?').get(username) as { locked_until_ms: number } | undefined;
  return row?.locked_until_ms ?? 0;
}

/**
 * Checks a password and opens a session. A locked username is refused before its password is even looked at, so
 * guessing on stops working; each failure is audited, and so is each lock with its length. Unknown usernames fail,
 * count and lock exactly like known ones, at the same cost. Failures are also counted per client address
 * (`perAddress` of them before its first lock; 0 leaves addresses alone), which stops one password tried on many
 * usernames.
 */
export async function login(
  db: Db, username: string, password: string, clock: { now(): number }, ttlMs: number,
  from: { address?: string | undefined; perAddress?: number | undefined } = {},
): Promise<LoginResult> {
  const byAddress = from.address !== undefined && (from.perAddress ?? 0) > 0 ? addressKey(from.address) : undefined;
  const until = Math.max(lockedUntil(db, username), byAddress ? lockedUntil(db, byAddress) : 0);
  if (until > clock.now()) return { ok: false, reason: 'locked', retryAfterMs: until - clock.now() };
  const row = db.prepare('SELECT role, password_hash FROM operators WHERE username = ?').get(username) as { role: Role; password_hash: string } | undefined;
  const ok = await checkPassword(password, row?.password_hash ?? 'scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAA');
  const nowMs = clock.now();
  if (!row || !ok) {
    return db.transaction((): LoginResult => {
      db.prepare('DELETE FROM login_failures WHERE last_failure_at_ms < ?').run(nowMs - FAILURES_FORGOTTEN_MS);
      const lock = countFailure(db, username, LOCK_AFTER_FAILURES, nowMs, { username });
      const addressLock = byAddress ? countFailure(db, byAddress, from.perAddress!, nowMs, { address: from.address }) : 0;
      const longest = Math.max(lock, addressLock);
      return longest ? { ok: false, reason: 'locked', retryAfterMs: longest } : { ok: false, reason: 'wrong' };
    })();
  }
  const token = randomBytes(32).toString('base64url');
  db.transaction(() => {
    // A good login clears its username's count and its address's (an office's typos add up over a day).
    db.prepare('DELETE FROM login_failures WHERE username IN (?, ?)').run(username, byAddress ?? username);
    db.prepare('DELETE FROM sessions WHERE expires_at_ms < ?').run(nowMs);
    db.prepare('INSERT INTO sessions (token_hash, username, expires_at_ms) VALUES (?, ?, ?)').run(tokenHash(token), username, nowMs + ttlMs);
  })();
  return { ok: true, token, role: row.role };
}

export function sessionUser(db: Db, token: string, nowMs: number): { username: string; role: Role } | undefined {
  return db
    .prepare('SELECT s.username AS username, o.role AS role FROM sessions s JOIN operators o USING (username) WHERE s.token_hash = ? AND s.expires_at_ms > ?')
    .get(tokenHash(token), nowMs) as { username: string; role: Role } | undefined;
}

export function logout(db: Db, token: string): void {
  db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash(token));
}

// Device credentials (secrets encrypted at rest), operator accounts (scrypt) and sessions.
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
  return secret;
}

export function deviceSecret(db: Db, key: Buffer, deviceId: string): string | undefined {
  const row = db.prepare('SELECT secret_enc FROM devices WHERE id = ?').get(deviceId) as { secret_enc: string } | undefined;
  return row ? decrypt(key, row.secret_enc) : undefined;
}

function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function checkPassword(password: string, stored: string): boolean {
  const [, salt, hash] = stored.split('$');
  const want = Buffer.from(hash ?? '', 'base64');
  const got = scryptSync(password, Buffer.from(salt ?? '', 'base64'), 32, { N: 16384, r: 8, p: 1 });
  return want.length === got.length && timingSafeEqual(want, got);
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

/** Returns a session token on a good password, undefined otherwise (same cost either way). */
export function login(db: Db, username: string, password: string, nowMs: number, ttlMs: number): { token: string; role: Role } | undefined {
  const row = db.prepare('SELECT role, password_hash FROM operators WHERE username = ?').get(username) as { role: Role; password_hash: string } | undefined;
  const ok = checkPassword(password, row?.password_hash ?? 'scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAA');
  if (!row || !ok) return undefined;
  const token = randomBytes(32).toString('base64url');
  db.prepare('DELETE FROM sessions WHERE expires_at_ms < ?').run(nowMs);
  db.prepare('INSERT INTO sessions (token_hash, username, expires_at_ms) VALUES (?, ?, ?)').run(tokenHash(token), username, nowMs + ttlMs);
  return { token, role: row.role };
}

export function sessionUser(db: Db, token: string, nowMs: number): { username: string; role: Role } | undefined {
  return db
    .prepare('SELECT s.username AS username, o.role AS role FROM sessions s JOIN operators o USING (username) WHERE s.token_hash = ? AND s.expires_at_ms > ?')
    .get(tokenHash(token), nowMs) as { username: string; role: Role } | undefined;
}

export function logout(db: Db, token: string): void {
  db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash(token));
}

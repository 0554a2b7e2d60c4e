// Device request signing for the alarm centre: the one definition of the HMAC both the robot and the centre use.
//
// The signature covers method, path (with query), timestamp and the SHA-256 of
// the exact body bytes, so a captured request cannot be replayed against
// another route, at another time, or with another body.
import { createHash, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

export const DEVICE_HEADER = 'x-dosis-device';
export const TIMESTAMP_HEADER = 'x-dosis-timestamp';
export const SIGNATURE_HEADER = 'x-dosis-signature';
/** Requests whose timestamp is further than this from the centre's clock are refused. */
export const SIGNATURE_WINDOW_MS = 5 * 60_000;

export function bodySha256(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

export function canonicalRequest(method: string, path: string, timestampMs: number, body: string | Buffer): string {
  return `${method.toUpperCase()}\n${path}\n${timestampMs}\n${bodySha256(body)}`;
}

/** `secret` as text, or as a KeyObject made from its UTF-8 bytes (the same key; a verifier that keeps one skips the import per request). */
export function signRequest(secret: string | KeyObject, method: string, path: string, timestampMs: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(canonicalRequest(method, path, timestampMs, body)).digest('hex');
}

/** The three headers a device adds to a request. */
export function signedHeaders(deviceId: string, secret: string, method: string, path: string, timestampMs: number, body: string | Buffer): Record<string, string> {
  return {
    [DEVICE_HEADER]: deviceId,
    [TIMESTAMP_HEADER]: String(timestampMs),
    [SIGNATURE_HEADER]: signRequest(secret, method, path, timestampMs, body),
  };
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'stale_timestamp' | 'bad_signature' | 'bad_timestamp' };

/** Checks signature and time window; replay detection needs storage and is the caller's. */
export function verifyRequest(
  secret: string | KeyObject,
  method: string,
  path: string,
  timestampHeader: string,
  body: string | Buffer,
  signature: string,
  nowMs: number,
  windowMs = SIGNATURE_WINDOW_MS,
): VerifyResult {
  if (!/^\d{1,16}$/.test(timestampHeader)) return { ok: false, reason: 'bad_timestamp' };
  const ts = Number(timestampHeader);
  if (Math.abs(nowMs - ts) > windowMs) return { ok: false, reason: 'stale_timestamp' };
  const expected = createHmac('sha256', secret).update(canonicalRequest(method, path, ts, body)).digest();
  const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}

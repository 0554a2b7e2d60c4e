// Device request signatures (HMAC, time window, replay) and operator sessions (cookie), as route hooks.
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { DEVICE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyRequest } from '../../../protocol/src/centre/signing.js';
import { DeviceSecrets, roleAtLeast, sessionUser, type Role } from '../store/accounts.js';
import { groupCommitFor } from '../store/group-commit.js';
import { AlarmError, forbidden, unauthorized } from '../errors.js';

export const SESSION_COOKIE = 'dosis_session';

declare module 'fastify' {
  interface FastifyInstance {
    /** A preValidation hook in callback style (no promise per request); refuses with 401, 403 or 429. */
    verifyDevice(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void;
    requireRole(min: Role): (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
    deviceSecrets: DeviceSecrets;
  }
  interface FastifyRequest {
    /**
     * The verified request's signature. Replays are caught by remembering every accepted signature for twice
     * the window: the route stores it in the transaction that does the request's writes, where a replay
     * (even one racing its original in the same group) finds it and is refused.
     */
    deviceSignature?: string;
    /** The time the device signed the request at (its timestamp header), the signature's key in request_signatures. */
    deviceSignedAtMs?: number;
    /** The stored ciphertext of the secret the request was verified with, confirmed again where its writes are stored. */
    deviceSecretEnc?: string;
  }
}

export default fp(async function auth(app: FastifyInstance) {
  const perDevice = new Map<string, { startMs: number; count: number }>();
  const secrets = new DeviceSecrets(app.db, app.secretKey);
  groupCommitFor(app.db).onForeignWrite(() => secrets.staleAll());
  app.decorate('deviceSecrets', secrets);

  const verify = (req: FastifyRequest): void => {
    const device = req.headers[DEVICE_HEADER];
    const ts = req.headers[TIMESTAMP_HEADER];
    const sig = req.headers[SIGNATURE_HEADER];
    if (typeof device !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') throw unauthorized('missing signature headers');
    let secret = device.length <= 64 ? secrets.entry(device) : undefined;
    if (!secret) throw unauthorized('unknown device or bad signature');
    const now = app.clock.now();
    const body = req.rawBody ?? Buffer.alloc(0);
    let v = verifyRequest(secret.key, req.method, req.url, ts, body, sig, now, app.config.signatureWindowMs);
    if (!v.ok && v.reason === 'bad_signature') {
      // The device may have been registered again by another process since the secret was cached.
      const again = secrets.entry(device, true);
      if (again && again.enc !== secret.enc) v = verifyRequest((secret = again).key, req.method, req.url, ts, body, sig, now, app.config.signatureWindowMs);
    }
    if (!v.ok) throw unauthorized(v.reason === 'stale_timestamp' ? 'timestamp outside the allowed window' : 'unknown device or bad signature');
    const params = req.params as { deviceId?: string };
    if (params.deviceId !== undefined && params.deviceId !== device) throw forbidden('a device may only post as itself');
    // Counted only after the signature holds, so nobody can spend another device's budget.
    // A limit of 0 turns it off (benchmarks that measure the ingestion path alone).
    if (app.config.rateLimitPerMinute > 0) {
      const w = perDevice.get(device);
      if (!w || now - w.startMs >= 60_000) perDevice.set(device, { startMs: now, count: 1 });
      else if (++w.count > app.config.rateLimitPerMinute) throw new AlarmError('DOSIS_ERR_RATE_LIMIT', 429, 'too many requests from this device');
    }
    req.deviceId = device;
    req.deviceSignature = sig;
    req.deviceSignedAtMs = Number(ts);
    req.deviceSecretEnc = secret.enc;
  };
  app.decorate('verifyDevice', (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    try {
      verify(req);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });

  app.decorate('requireRole', (min: Role) => async (req: FastifyRequest) => {
    const token = req.cookies[SESSION_COOKIE];
    const user = token ? sessionUser(app.db, token, app.clock.now()) : undefined;
    if (!user) throw unauthorized('log in first');
    if (!roleAtLeast(user.role, min)) throw forbidden(`needs role ${min}`);
    req.operator = user;
  });
});

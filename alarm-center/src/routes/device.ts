// Device API: signed event posts (single and batch) and heartbeats.
//
// Every write goes through one GroupCommit: requests that arrive together share a
// transaction and an fsync, each in its own savepoint with its signature, and each
// is answered only once the COMMIT that holds it is on disk (store/group-commit.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { BatchBody, BatchReply, DeviceParams, EventBody, EventReply, HeartbeatBody, HeartbeatReply, dailyReportProblem } from '../../../protocol/src/centre/contract.js';
import { ErrorReply } from '../schemas/operator.js';
import { ingestEvents, recordHeartbeat } from '../store/alerts.js';
import { forgetSignaturesBefore, rememberSignature } from '../store/accounts.js';
import { groupCommitFor } from '../store/group-commit.js';
import { AlarmError, conflict, unauthorized } from '../errors.js';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 409: ErrorReply, 413: ErrorReply, 422: ErrorReply };
// Robots are not browsers: the browser-protection headers (CSP, framing, sniffing) mean nothing to them, and helmet
// builds its middleware anew for every request, a tenth of a device request's CPU. The page and operator API keep them.
const noBrowserHeaders = { helmet: false } as const;

const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // A fleet's requests are many and alike: no 'incoming request' and 'request completed' lines for each (two
  // synchronous writes per request at the default level). Warnings and errors are still logged, and what a device
  // stored is in the audit trail. At debug they are logged like any request; above info there is nothing to drop.
  const level = (app.log as { levelVal?: number }).levelVal;
  const quiet = level !== undefined && level >= 30 && level < 40 ? ({ ...noBrowserHeaders, logLevel: 'warn' } as const) : noBrowserHeaders;
  const writes = groupCommitFor(app.db);
  // Runs once the server has answered every request, so no fsync is still pending.
  app.addHook('onClose', async () => writes.close());

  let purgedAtMs = -Infinity;
  /** Runs a signed request's writes in the next group, together with its signature: a replay that raced the original is refused here. */
  const write = <T>(req: FastifyRequest, work: (nowMs: number) => T): Promise<T> =>
    writes.run(() => {
      const now = app.clock.now();
      // Expired signatures leave with writes that are synced anyway, at most once a second; the scheduler's
      // own purge then finds none, so its pass stays a read and costs no fsync on the event loop.
      if (now - purgedAtMs >= 1_000) {
        purgedAtMs = now;
        forgetSignaturesBefore(app.db, now - 2 * app.config.signatureWindowMs);
      }
      // Registered again (by another process) since the request was verified: its secret is no longer the device's.
      if (!app.deviceSecrets.confirm(req.deviceId!, req.deviceSecretEnc!)) throw unauthorized('unknown device or bad signature');
      if (!rememberSignature(app.db, req.deviceSignature!, req.deviceSignedAtMs!)) throw unauthorized('replayed request');
      return work(now);
    });

  app.post('/v1/devices/:deviceId/events', {
    ...quiet,
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: EventBody, response: { 200: EventReply, 201: EventReply, ...errors } },
  }, async (req, reply) => {
    const [r] = await write(req, (now) => ingestEvents(app.db, req.params.deviceId, [req.body], now));
    if (r!.status === 'conflict') throw conflict(`event ${r!.eventId} was already stored with a different body`);
    return reply.code(r!.status === 'stored' ? 201 : 200).send(r!);
  });

  app.post('/v1/devices/:deviceId/events/batch', {
    ...quiet,
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: BatchBody, response: { 200: BatchReply, ...errors } },
  }, async (req) => ({ results: await write(req, (now) => ingestEvents(app.db, req.params.deviceId, req.body.events, now)) }));

  app.post('/v1/devices/:deviceId/heartbeat', {
    ...quiet,
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: HeartbeatBody, response: { 200: HeartbeatReply, ...errors } },
  }, async (req) => {
    // Figures that cannot be true would skew the municipality's report; the robot hears why.
    const problem = (req.body.report && dailyReportProblem(req.body.report, app.clock.now()))
      || (req.body.previousReport && dailyReportProblem(req.body.previousReport, app.clock.now()));
    if (problem) throw new AlarmError('DOSIS_ERR_VALIDATION', 422, `daily report: ${problem}`);
    const now = await write(req, (now) => {
      recordHeartbeat(app.db, req.params.deviceId, req.body, now);
      return now;
    });
    return { intervalMs: app.config.heartbeatIntervalMs, serverTimeMs: now };
  });
};
export default deviceRoutes;

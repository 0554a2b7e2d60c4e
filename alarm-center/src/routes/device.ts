// Device API: signed event posts (single and batch) and heartbeats.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BatchBody, BatchReply, DeviceParams, EventBody, EventReply, HeartbeatBody, HeartbeatReply, dailyReportProblem } from '../../../protocol/src/centre/contract.js';
import { ErrorReply } from '../schemas/operator.js';
import { ingestEvents, recordHeartbeat } from '../store/alerts.js';
import { AlarmError, conflict } from '../errors.js';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 409: ErrorReply, 413: ErrorReply, 422: ErrorReply };

const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/devices/:deviceId/events', {
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: EventBody, response: { 200: EventReply, 201: EventReply, ...errors } },
  }, async (req, reply) => {
    const [r] = ingestEvents(app.db, req.params.deviceId, [req.body], app.clock.now());
    if (r!.status === 'conflict') throw conflict(`event ${r!.eventId} was already stored with a different body`);
    return reply.code(r!.status === 'stored' ? 201 : 200).send(r!);
  });

  app.post('/v1/devices/:deviceId/events/batch', {
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: BatchBody, response: { 200: BatchReply, ...errors } },
  }, async (req) => ({ results: ingestEvents(app.db, req.params.deviceId, req.body.events, app.clock.now()) }));

  app.post('/v1/devices/:deviceId/heartbeat', {
    preValidation: app.verifyDevice,
    schema: { tags: ['device'], params: DeviceParams, body: HeartbeatBody, response: { 200: HeartbeatReply, ...errors } },
  }, async (req) => {
    // Figures that cannot be true would skew the municipality's report; the robot hears why.
    const problem = req.body.report && dailyReportProblem(req.body.report, app.clock.now());
    if (problem) throw new AlarmError('DOSIS_ERR_VALIDATION', 422, `daily report: ${problem}`);
    recordHeartbeat(app.db, req.params.deviceId, req.body, app.clock.now());
    return { intervalMs: app.config.heartbeatIntervalMs, serverTimeMs: app.clock.now() };
  });
};
export default deviceRoutes;

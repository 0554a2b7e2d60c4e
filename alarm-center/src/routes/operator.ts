// Operator API: session, alert queue and actions, contact details, devices, silences, fleet report.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import * as S from '../schemas/operator.js';
import { login, logout, registerDevice } from '../store/accounts.js';
import { actOnAlert, addSilence, auditTrail, deviceHealth, endSilence, fleetReport, getAlert, listAlerts, listSilences, readContact, setContact } from '../store/alerts.js';
import { unauthorized } from '../errors.js';
import { SESSION_COOKIE } from '../plugins/auth.js';

const errors = { 400: S.ErrorReply, 401: S.ErrorReply, 403: S.ErrorReply, 404: S.ErrorReply, 409: S.ErrorReply };

const operatorRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const operator = app.requireRole('operator');
  const supervisor = app.requireRole('supervisor');
  const admin = app.requireRole('admin');
  const now = () => app.clock.now();

  app.post('/v1/session', { schema: { tags: ['operator'], body: S.LoginBody, response: { 200: S.Me, ...errors } } }, async (req, reply) => {
    const s = login(app.db, req.body.username, req.body.password, now(), app.config.sessionTtlMs);
    if (!s) throw unauthorized('wrong username or password');
    reply.setCookie(SESSION_COOKIE, s.token, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: Math.floor(app.config.sessionTtlMs / 1000) });
    return { username: req.body.username, role: s.role };
  });
  app.get('/v1/session', { preHandler: operator, schema: { tags: ['operator'], response: { 200: S.Me, ...errors } } }, async (req) => req.operator!);
  app.delete('/v1/session', { schema: { tags: ['operator'] } }, async (req, reply) => {
    const token = req.cookies[SESSION_COOKIE];
    if (token) logout(app.db, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send(null);
  });

  app.get('/v1/alerts', { preHandler: operator, schema: { tags: ['alerts'], querystring: S.AlertQuery, response: { 200: S.AlertList, ...errors } } }, async (req) => ({
    serverTimeMs: now(),
    alerts: listAlerts(app.db, !req.query.all),
  }));
  app.get('/v1/alerts/:id', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.Alert, ...errors } } }, async (req) => getAlert(app.db, req.params.id));
  app.get('/v1/alerts/:id/audit', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.AuditList, ...errors } } }, async (req) => auditTrail(app.db, req.params.id));
  app.get('/v1/alerts/:id/contact', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.Contact, ...errors } } }, async (req) =>
    readContact(app.db, req.params.id, req.operator!, now()));
  app.post('/v1/alerts/:id/claim', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, body: S.ClaimBody, response: { 200: S.Alert, ...errors } } }, async (req) =>
    actOnAlert(app.db, req.params.id, req.body.version, req.operator!, { kind: 'claim' }, now()));
  app.post('/v1/alerts/:id/contact-attempts', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, body: S.ContactBody, response: { 200: S.Alert, ...errors } } }, async (req) =>
    actOnAlert(app.db, req.params.id, req.body.version, req.operator!, { kind: 'contact', result: req.body.result, note: req.body.note }, now()));
  app.post('/v1/alerts/:id/escalate', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, body: S.EscalateBody, response: { 200: S.Alert, ...errors } } }, async (req) =>
    actOnAlert(app.db, req.params.id, req.body.version, req.operator!, { kind: 'escalate', note: req.body.note }, now()));
  app.post('/v1/alerts/:id/resolve', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, body: S.ResolveBody, response: { 200: S.Alert, ...errors } } }, async (req) =>
    actOnAlert(app.db, req.params.id, req.body.version, req.operator!, { kind: 'resolve', outcome: req.body.outcome, note: req.body.note }, now()));

  app.get('/v1/devices', { preHandler: operator, schema: { tags: ['devices'], response: { 200: Type.Array(S.DeviceHealth), ...errors } } }, async () => deviceHealth(app.db, app.config, now()));
  app.post('/v1/devices', { preHandler: admin, schema: { tags: ['devices'], body: S.RegisterBody, response: { 201: S.RegisterReply, ...errors } } }, async (req, reply) =>
    reply.code(201).send({ deviceId: req.body.deviceId, secret: registerDevice(app.db, app.secretKey, req.body.deviceId, now()) }));
  app.put('/v1/devices/:deviceId/contact', { preHandler: admin, schema: { tags: ['devices'], params: S.DeviceParams, body: S.Contact, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    setContact(app.db, req.params.deviceId, req.body, req.operator!.username, now());
    return reply.code(204).send(null);
  });

  app.get('/v1/silences', { preHandler: operator, schema: { tags: ['silences'], response: { 200: Type.Array(S.Silence), ...errors } } }, async () => listSilences(app.db, now()));
  app.post('/v1/silences', { preHandler: supervisor, schema: { tags: ['silences'], body: S.SilenceBody, response: { 201: Type.Object({ id: Type.Integer() }), ...errors } } }, async (req, reply) =>
    reply.code(201).send({ id: addSilence(app.db, req.body.deviceId, req.body.reason, req.body.endsAtMs, req.operator!.username, now()) }));
  app.delete('/v1/silences/:id', { preHandler: supervisor, schema: { tags: ['silences'], params: S.SilenceParams, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    endSilence(app.db, req.params.id, req.operator!.username, now());
    return reply.code(204).send(null);
  });

  app.get('/v1/reports/fleet', { preHandler: operator, schema: { tags: ['reports'], response: { 200: Type.Array(S.ReportRow), ...errors } } }, async () => fleetReport(app.db));
};
export default operatorRoutes;

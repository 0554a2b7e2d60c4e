// Operator API: session, alert queue and actions, contact details, devices, silences, fleet report.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import * as S from '../schemas/operator.js';
import { login, logout, passwordChecksWaiting, registerDevice } from '../store/accounts.js';
import {
  actOnAlert, addSilence, adherenceReport, auditTrail, deviceHealth, endSilence, fleetReport, getAlert, listAlerts, listSilences, readContact,
  setContact, setDistrict, toCsv,
} from '../store/alerts.js';
import { AlarmError, unauthorized } from '../errors.js';
import { SESSION_COOKIE } from '../plugins/auth.js';

/** Logins waiting for a password check beyond which new ones are answered 503. */
const MAX_WAITING_LOGINS = 64;

const errors = { 400: S.ErrorReply, 401: S.ErrorReply, 403: S.ErrorReply, 404: S.ErrorReply, 409: S.ErrorReply };

const operatorRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const operator = app.requireRole('operator');
  const supervisor = app.requireRole('supervisor');
  const admin = app.requireRole('admin');
  const now = () => app.clock.now();

  // One password check at a time per username: parallel guesses would otherwise all pass the lock check together.
  const checking = new Set<string>();
  const locked = (retryAfterMs: number, reply: { header(k: string, v: string): unknown }) => {
    reply.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    return new AlarmError('DOSIS_ERR_LOCKED', 429, `too many failed logins: try again in ${Math.ceil(retryAfterMs / 1000)} s`);
  };
  app.post('/v1/session', { schema: { tags: ['operator'], body: S.LoginBody, response: { 200: S.Me, ...errors } } }, async (req, reply) => {
    const { username, password } = req.body;
    if (checking.has(username)) throw locked(1000, reply);
    // A flood across many usernames queues for the password checker; past a bound, new attempts are turned away.
    if (passwordChecksWaiting() >= MAX_WAITING_LOGINS) {
      reply.header('retry-after', '1');
      throw new AlarmError('DOSIS_ERR_BUSY', 503, 'too many logins at once: try again shortly');
    }
    checking.add(username);
    let s;
    try {
      s = await login(app.db, username, password, app.clock, app.config.sessionTtlMs, { address: req.ip, perAddress: app.config.loginFailuresPerAddress });
    } finally {
      checking.delete(username);
    }
    if (!s.ok && s.reason === 'locked') {
      req.log.warn({ username }, 'login refused: locked out');
      throw locked(s.retryAfterMs, reply);
    }
    if (!s.ok) throw unauthorized('wrong username or password');
    // Secure whenever the browser reached us over TLS, directly or (with --trust-proxy) through the proxy.
    reply.setCookie(SESSION_COOKIE, s.token, {
      httpOnly: true, sameSite: 'strict', path: '/', secure: req.protocol === 'https', maxAge: Math.floor(app.config.sessionTtlMs / 1000),
    });
    return { username, role: s.role };
  });
  app.get('/v1/session', { preHandler: operator, schema: { tags: ['operator'], response: { 200: S.Me, ...errors } } }, async (req) => req.operator!);
  app.delete('/v1/session', { schema: { tags: ['operator'] } }, async (req, reply) => {
    const token = req.cookies[SESSION_COOKIE];
    if (token) logout(app.db, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send(null);
  });

  app.get('/v1/alerts', { preHandler: operator, schema: { tags: ['alerts'], querystring: S.AlertQuery, response: { 200: S.AlertList, ...errors } } }, async (req) => {
    const q = req.query;
    const page = listAlerts(app.db, {
      live: !q.all && !(q.state === 'resolved' || q.state === 'cancelled'), state: q.state, priority: q.priority, type: q.type, deviceId: q.deviceId,
      holder: req.operator!.username,
      offset: q.offset ?? 0, limit: q.limit ?? 50,
    }, now(), app.config.escalateAfterMs);
    return { serverTimeMs: now(), ...page };
  });
  app.get('/v1/alerts/:id', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.Alert, ...errors } } }, async (req) => getAlert(app.db, req.params.id));
  app.get('/v1/alerts/:id/audit', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.AuditList, ...errors } } }, async (req) => auditTrail(app.db, req.params.id));
  app.get('/v1/alerts/:id/contact', { preHandler: operator, schema: { tags: ['alerts'], params: S.AlertParams, response: { 200: S.ContactReply, ...errors } } }, async (req) =>
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
  app.post('/v1/devices', { preHandler: admin, schema: { tags: ['devices'], body: S.RegisterBody, response: { 201: S.RegisterReply, ...errors } } }, async (req, reply) => {
    const secret = registerDevice(app.db, app.secretKey, req.body.deviceId, now());
    if (req.body.district) setDistrict(app.db, req.body.deviceId, req.body.district, req.operator!.username, now());
    return reply.code(201).send({ deviceId: req.body.deviceId, secret });
  });
  app.put('/v1/devices/:deviceId/district', { preHandler: admin, schema: { tags: ['devices'], params: S.DeviceParams, body: S.DistrictBody, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    setDistrict(app.db, req.params.deviceId, req.body.district, req.operator!.username, now());
    return reply.code(204).send(null);
  });
  app.put('/v1/devices/:deviceId/contact', { preHandler: admin, schema: { tags: ['devices'], params: S.DeviceParams, body: S.Contact, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    setContact(app.db, req.params.deviceId, req.body, req.operator!.username, now());
    return reply.code(204).send(null);
  });

  app.get('/v1/silences', { preHandler: operator, schema: { tags: ['silences'], response: { 200: Type.Array(S.Silence), ...errors } } }, async () => listSilences(app.db, now()));
  app.post('/v1/silences', { preHandler: supervisor, schema: { tags: ['silences'], body: S.SilenceBody, response: { 201: Type.Object({ id: Type.Integer() }), ...errors } } }, async (req, reply) =>
    reply.code(201).send({ id: addSilence(app.db, req.body.deviceId, req.body.reason, req.body.endsAtMs, req.operator!.username, now(), app.config.maxSilenceDays) }));
  app.delete('/v1/silences/:id', { preHandler: supervisor, schema: { tags: ['silences'], params: S.SilenceParams, response: { 204: Type.Null(), ...errors } } }, async (req, reply) => {
    endSilence(app.db, req.params.id, req.operator!.username, now());
    return reply.code(204).send(null);
  });

  const csv = (reply: FastifyReply, name: string, header: string[], rows: unknown[][]) =>
    reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(toCsv(header, rows));
  app.get('/v1/reports/fleet', {
    preHandler: operator,
    schema: { tags: ['reports'], querystring: S.ReportQuery, response: { 200: Type.Array(S.ReportRow), ...errors } },
  }, async (req, reply) => {
    const rows = fleetReport(app.db, app.config.timeZone);
    if (req.query.format !== 'csv') return rows;
    const cols = ['month', 'dosings', 'pills', 'correct', 'green', 'yellow', 'accuracy', 'taken', 'missed', 'failed', 'adherence', 'alerts', 'meanClaimMs', 'meanResolveMs'] as const;
    return csv(reply, 'fleet', [...cols], rows.map((r) => cols.map((c) => r[c])));
  });
  app.get('/v1/reports/adherence', {
    preHandler: operator,
    schema: { tags: ['reports'], querystring: S.AdherenceQuery, response: { 200: Type.Array(S.AdherenceRow), ...errors } },
  }, async (req, reply) => {
    const by = req.query.by ?? 'month';
    const rows = adherenceReport(app.db, by);
    if (req.query.format !== 'csv') return rows;
    const cols = ['month', 'group', 'taken', 'missed', 'failed', 'due', 'adherence'] as const;
    return csv(reply, `adherence-by-${by}`, ['month', by === 'month' ? 'all' : by, ...cols.slice(2)], rows.map((r) => cols.map((c) => r[c])));
  });
};
export default operatorRoutes;

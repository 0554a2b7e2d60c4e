// The robot's local web server for the citizen's screen and the pharmacy's loading screen.
//
// It only translates HTTP to the ScreenBackend and back: no dispensing logic
// lives here. The citizen's side needs no login (the robot stands in the
// citizen's home; pressing the button is all it allows); everything under
// /api/pharmacy except login needs a session made with a staff PIN. Logs carry
// request lines, staff ids and counts, never manifests, PINs or dose contents.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../protocol/src/clock.js';
import type { CareResult, CitizenView, ScreenBackend } from './backend.js';
import { ManifestTooLargeError, NotConfirmedError, NotLoggedInError, ReceiptNotFoundError, ScreenError } from './errors.js';
import { messagesFor } from '../../../protocol/src/i18n.js';
import { migrate } from '../store/schema.js';
import { verifyPin } from './pin.js';
import { getReceipt, renderReceiptHtml, saveReceipt, type ReceiptKind } from './receipts.js';
import {
  CommissionBody,
  DecommissionBody,
  EndPauseBody,
  PauseBody,
  TravelBody,
  WithdrawBody,
  LoadBody,
  LoginBody,
  MANIFEST_BODY_LIMIT,
  MANIFEST_MAX_BYTES,
  PageQuery,
  ReceiptParams,
  StaticParams,
  UnloadBody,
  ValidateBody,
} from './schemas.js';
import { type Session, SessionStore, type SessionOptions } from './sessions.js';

export type ScreenLang = 'da' | 'en';

export type ScreenServerOptions = {
  backend: ScreenBackend;
  /** The host's SQLite file: PINs, their audit trail and return receipts live here (migrated on start). */
  db: Database;
  clock: Clock;
  logger: Logger;
  /** Language of the pages when the URL does not say (?lang=en); Danish by default. */
  lang?: ScreenLang;
  session?: SessionOptions;
  /** SSE heartbeat period; 15 s by default. */
  heartbeatMs?: number;
};

export const SESSION_COOKIE = 'dosis_pharmacy';
/** The on-screen button's request carries this header with the value `citizen`. */
export const BUTTON_HEADER = 'x-dosis-screen';

const PUBLIC_DIR = new URL('./public/', import.meta.url);
/** The catalogue areas (protocol/messages/<area>.json) each page's words come from. */
export const CITIZEN_AREAS = ['citizen', 'common'] as const;
export const PHARMACY_AREAS = ['pharmacy', 'roll', 'common'] as const;
const STATIC_TYPES = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' } as const;
// No external origins at all: the screen works with the robot offline and leaks nothing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

declare module 'fastify' {
  interface FastifyRequest {
    pharmacySession?: Session;
  }
}

function loadPublic(): { pages: Record<'citizen' | 'pharmacy', string>; statics: Map<string, { body: string; type: string }> } {
  const read = (name: string) => readFileSync(new URL(name, PUBLIC_DIR), 'utf8');
  const statics = new Map<string, { body: string; type: string }>();
  for (const name of ['citizen.css', 'citizen.js', 'messages.js', 'pharmacy.css', 'pharmacy.js', 'receipt.css', 'receipt.js']) {
    const ext = name.endsWith('.css') ? 'css' : 'js';
    statics.set(name, { body: read(name), type: STATIC_TYPES[ext] });
  }
  return { pages: { citizen: read('citizen.html'), pharmacy: read('pharmacy.html') }, statics };
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function createScreenServer(opts: ScreenServerOptions): FastifyInstance {
  const { backend, db, clock } = opts;
  const defaultLang: ScreenLang = opts.lang ?? 'da';
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  // The store's migrations (a no-op on the robot's own, already opened database): PINs, roles, receipts.
  migrate(db, { firstCommandNumber: Math.floor(Math.random() * 0x40000000) });
  const sessions = new SessionStore(clock, opts.session);
  const { pages, statics } = loadPublic();
  // Each page carries its words for both languages (switching needs no request, and no word is missing while one loads).
  // Data, not script (the CSP allows no inline script): the page reads it as JSON; `<` escaped so it cannot end the element.
  const inlined = (areas: readonly string[]) => JSON.stringify({ da: messagesFor('da', areas), en: messagesFor('en', areas) }).replaceAll('<', '\\u003c');
  const pageMessages = { citizen: inlined(CITIZEN_AREAS), pharmacy: inlined(PHARMACY_AREAS) };

  const app = Fastify({
    loggerInstance: opts.logger,
    // 1 MiB covers every request but a manifest; the roll routes raise it.
    bodyLimit: 1024 * 1024,
    // The screens are served on the robot itself; no proxy in front.
    trustProxy: false,
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  void app.register(fastifyCookie);

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError | ScreenError, req, reply) => {
    if (err instanceof ScreenError) return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    const fe = err as FastifyError;
    if (fe.validation) return reply.code(400).send({ error: 'DOSIS_ERR_BAD_REQUEST', message: fe.message });
    if (fe.statusCode === 413) return reply.code(413).send({ error: 'DOSIS_ERR_BODY_TOO_LARGE', message: 'request body too large' });
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send({ error: 'DOSIS_ERR_BAD_REQUEST', message: fe.message });
    }
    // Only the error's identity: a backend message could quote a manifest.
    req.log.error({ errName: fe.name, errCode: fe.code, route: req.routeOptions.url }, 'screen request failed');
    return reply.code(500).send({ error: 'DOSIS_ERR_INTERNAL', message: 'internal error' });
  });

  const api = app.withTypeProvider<TypeBoxTypeProvider>();

  // ---- pages and static files ----

  const page = (name: 'citizen' | 'pharmacy') => async (req: FastifyRequest<{ Querystring: { lang?: ScreenLang } }>, reply: FastifyReply) => {
    const lang = req.query.lang ?? defaultLang;
    reply.header('content-security-policy', CSP).type('text/html; charset=utf-8');
    return pages[name].replaceAll('__LANG__', lang).replaceAll('__DEFAULT_LANG__', defaultLang).replace('__MESSAGES__', () => pageMessages[name]);
  };
  api.get('/', { schema: { querystring: PageQuery } }, page('citizen'));
  api.get('/pharmacy', { schema: { querystring: PageQuery } }, page('pharmacy'));
  api.get('/static/:file', { schema: { params: StaticParams } }, async (req, reply) => {
    const file = statics.get(req.params.file);
    if (!file) return reply.code(404).send({ error: 'DOSIS_ERR_NOT_FOUND', message: 'no such file' });
    reply.header('cache-control', 'no-cache').type(file.type);
    return file.body;
  });

  // ---- citizen ----

  api.get('/api/citizen', async () => backend.citizenView());

  const streams = new Set<() => void>();
  api.get('/api/citizen/stream', (req, reply) => {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    let open = true;
    const write = (chunk: string) => {
      if (open && !res.destroyed && !res.writableEnded) res.write(chunk);
    };
    const send = (v: CitizenView) => write(`data: ${JSON.stringify(v)}\n\n`);
    // The browser reconnects by itself after this long when the stream drops.
    write('retry: 2000\n\n');
    send(backend.citizenView());
    const unsubscribe = backend.onCitizenView(send);
    let beat: TimerHandle | undefined;
    const heartbeat = () => {
      write(': heartbeat\n\n');
      beat = clock.setTimeout(heartbeat, heartbeatMs);
    };
    beat = clock.setTimeout(heartbeat, heartbeatMs);
    const close = () => {
      if (!open) return;
      open = false;
      unsubscribe();
      clock.clearTimeout(beat);
      streams.delete(end);
    };
    const end = () => {
      close();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    (req.raw as IncomingMessage).on('close', close);
    res.on('close', close);
  });
  // Open streams would hold close() forever: end them first.
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  // A press can start a dispense, so a page of another origin must not be able to forge one: a custom
  // header makes the browser ask first (CORS preflight), and this server answers no preflight.
  api.post('/api/citizen/button', async (req, reply) => {
    if (req.headers[BUTTON_HEADER] !== 'citizen') {
      return reply.code(403).send({ error: 'DOSIS_ERR_FORBIDDEN', message: `the button needs the ${BUTTON_HEADER} header` });
    }
    backend.pressButton();
    return { ok: true };
  });

  // ---- pharmacy ----

  const requireSession = async (req: FastifyRequest) => {
    const s = sessions.touch(req.cookies[SESSION_COOKIE]);
    if (!s) throw new NotLoggedInError();
    req.pharmacySession = s;
  };
  const session = (req: FastifyRequest): Session => {
    if (!req.pharmacySession) throw new NotLoggedInError();
    return req.pharmacySession;
  };

  api.post('/api/pharmacy/login', { schema: { body: LoginBody } }, async (req, reply) => {
    const result = verifyPin(db, req.body.staffId, req.body.pin, clock.now());
    if (result.ok) {
      const { token, session: s } = sessions.create(result.staffId);
      req.log.info({ staffId: result.staffId }, 'pharmacy login');
      reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/' });
      return { ok: true, staffId: s.staffId, expiresAtMs: s.expiresAtMs };
    }
    req.log.warn({ reason: result.reason }, 'pharmacy login refused');
    if (result.reason === 'locked') {
      const retryAfterMs = Math.max(0, result.lockedUntilMs - clock.now());
      reply.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
      return reply.code(423).send({ error: 'DOSIS_ERR_PIN_LOCKED', message: 'too many wrong PINs', lockedUntilMs: result.lockedUntilMs, retryAfterMs });
    }
    return reply.code(401).send({ error: 'DOSIS_ERR_PIN_WRONG', message: 'wrong staff id or PIN', attemptsLeft: result.attemptsLeft });
  });

  api.post('/api/pharmacy/logout', async (req, reply) => {
    sessions.end(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  // The words of the pharmacy screen, from the shared catalogue; no session needed (the login page uses them too).
  api.get('/api/pharmacy/messages', { schema: { querystring: PageQuery } }, async (req, reply) => {
    reply.header('cache-control', 'no-cache');
    return messagesFor(req.query.lang ?? defaultLang, PHARMACY_AREAS);
  });

  api.get('/api/pharmacy', { preHandler: requireSession }, async (req) => {
    const s = session(req);
    return { ...backend.pharmacyView(), staffId: s.staffId, sessionExpiresAtMs: s.expiresAtMs, timeZone: backend.citizenView().timeZone };
  });

  const checkSize = (manifest: string) => {
    if (Buffer.byteLength(manifest, 'utf8') > MANIFEST_MAX_BYTES) throw new ManifestTooLargeError(MANIFEST_MAX_BYTES);
  };

  api.post(
    '/api/pharmacy/roll/validate',
    { preHandler: requireSession, bodyLimit: MANIFEST_BODY_LIMIT, schema: { body: ValidateBody } },
    async (req) => {
      const s = session(req);
      checkSize(req.body.manifest);
      const returnPending = req.body.returnPending === true;
      const result = backend.validateRoll(req.body.manifest, { returnPending });
      const digest = sha256(req.body.manifest);
      s.validatedManifestSha256 = result.ok ? digest : null;
      s.validatedReturnPending = returnPending;
      req.log.info({ staffId: s.staffId, ok: result.ok, problems: result.problems.length, pouches: result.pouches }, 'roll validated');
      // The roll's printed name and birth date go to the staff's screen for the confirm step, never to the log.
      return { ok: result.ok, problems: result.problems, pouches: result.pouches, sha256: result.ok ? digest : null, roll: result.roll ?? null, pending: result.pending ?? 0 };
    },
  );

  api.post(
    '/api/pharmacy/roll/load',
    { preHandler: requireSession, bodyLimit: MANIFEST_BODY_LIMIT, schema: { body: LoadBody } },
    async (req, reply) => {
      const s = session(req);
      checkSize(req.body.manifest);
      const digest = sha256(req.body.manifest);
      const returnPending = req.body.returnPending === true;
      if (s.validatedManifestSha256 === null || s.validatedManifestSha256 !== digest || req.body.confirmSha256 !== digest || s.validatedReturnPending !== returnPending) {
        throw new NotConfirmedError();
      }
      s.validatedManifestSha256 = null;
      const result = backend.loadRoll(req.body.manifest, s.staffId, { returnPending });
      req.log.info({ staffId: s.staffId, ok: result.ok, problems: result.problems.length }, 'roll load');
      if (!result.ok) return reply.code(422).send({ ok: false, problems: result.problems });
      const receipt = saveReceipt(db, {
        kind: result.replaced ? 'replace' : 'load', rollId: result.rollId ?? null, staffId: s.staffId, atMs: clock.now(), timeZone: backend.citizenView().timeZone,
        returned: result.returned ?? [], loaded: result.loaded ?? [],
      });
      return { ok: true, problems: result.problems, receiptId: receipt.receiptId, returned: result.returned ?? [] };
    },
  );

  api.post('/api/pharmacy/roll/unload', { preHandler: requireSession, schema: { body: UnloadBody } }, async (req, reply) => {
    const s = session(req);
    const rollId = backend.pharmacyView().roll?.rollId ?? null;
    const result = backend.unloadRoll(s.staffId);
    req.log.info({ staffId: s.staffId, ok: result.ok, returned: result.returned.length }, 'roll unload');
    if (!result.ok) return reply.code(409).send({ ok: false, error: 'DOSIS_ERR_UNLOAD_REFUSED', message: 'the controller refused to unload', returned: [] });
    const receipt = saveReceipt(db, { rollId, staffId: s.staffId, atMs: clock.now(), timeZone: backend.citizenView().timeZone, returned: result.returned });
    return { ok: true, receiptId: receipt.receiptId, rollId, returned: result.returned };
  });

  // ---- commissioning and care ----

  const care = () => {
    if (!backend.care) throw new ScreenError('DOSIS_ERR_NOT_FOUND', 404, 'not available on this robot');
    return backend.care;
  };
  /** An administrator's PIN, checked (and audited, and locked out) like a login. */
  const admin = (adminId: string, adminPin: string): string => {
    const r = verifyPin(db, adminId, adminPin, clock.now());
    if (!r.ok || !care().isAdmin(r.staffId)) throw new ScreenError('DOSIS_ERR_NOT_ADMIN', 403, 'an administrator\'s staff id and PIN are needed');
    return r.staffId;
  };
  const careReply = (reply: FastifyReply, staffId: string, kind: ReceiptKind | null, r: CareResult) => {
    if (!r.ok) return reply.code(409).send({ ok: false, error: r.code, message: r.message });
    if (kind === null) return { ok: true };
    const receipt = saveReceipt(db, { kind, rollId: r.rollId, staffId, atMs: clock.now(), timeZone: backend.citizenView().timeZone, returned: r.doses, pause: r.pause });
    return { ok: true, receiptId: receipt.receiptId, doses: r.doses };
  };

  api.post('/api/pharmacy/commission', { preHandler: requireSession, schema: { body: CommissionBody } }, async (req, reply) => {
    session(req);
    const by = admin(req.body.adminId, req.body.adminPin);
    req.log.info({ staffId: by }, 'commission');
    return careReply(reply, by, null, care().commission(req.body.citizenId, by));
  });

  api.post('/api/pharmacy/decommission', { preHandler: requireSession, schema: { body: DecommissionBody } }, async (req, reply) => {
    session(req);
    const by = admin(req.body.adminId, req.body.adminPin);
    req.log.info({ staffId: by }, 'decommission');
    return careReply(reply, by, null, care().decommission(by));
  });

  api.post('/api/pharmacy/pause', { preHandler: requireSession, schema: { body: PauseBody } }, async (req, reply) => {
    const s = session(req);
    return careReply(reply, s.staffId, 'pause', care().pause(req.body, s.staffId));
  });

  api.post('/api/pharmacy/pause/end', { preHandler: requireSession, schema: { body: EndPauseBody } }, async (req, reply) => {
    const s = session(req);
    return careReply(reply, s.staffId, 'resume', care().endPause(s.staffId));
  });

  api.post('/api/pharmacy/travel', { preHandler: requireSession, schema: { body: TravelBody } }, async (req, reply) => {
    const s = session(req);
    const r = verifyPin(db, s.staffId, req.body.pin, clock.now());
    if (!r.ok) return reply.code(403).send({ ok: false, error: 'DOSIS_ERR_PIN_WRONG', message: 'wrong PIN' });
    return careReply(reply, s.staffId, 'travel', care().travel(req.body.count, s.staffId));
  });

  api.post('/api/pharmacy/withdraw', { preHandler: requireSession, schema: { body: WithdrawBody } }, async (req, reply) => {
    const s = session(req);
    const which = 'fromMs' in req.body ? { fromMs: req.body.fromMs } : { doseIds: req.body.doseIds };
    return careReply(reply, s.staffId, 'withdraw', care().withdraw(which, s.staffId));
  });

  api.get(
    '/api/pharmacy/receipt/:id',
    { preHandler: requireSession, schema: { params: ReceiptParams, querystring: PageQuery } },
    async (req, reply) => {
      const receipt = getReceipt(db, req.params.id);
      if (!receipt) throw new ReceiptNotFoundError();
      reply.header('content-security-policy', CSP).type('text/html; charset=utf-8');
      return renderReceiptHtml(receipt, req.query.lang ?? defaultLang);
    },
  );

  return app as unknown as FastifyInstance;
}

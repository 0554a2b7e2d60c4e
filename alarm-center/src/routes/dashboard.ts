// What the operators' page needs besides the API: its libraries from node_modules, its messages, and a live stream.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { DEFAULT_LANG, messagesFor } from '../../../protocol/src/i18n.js';
import type { TimerHandle } from '../../../protocol/src/clock.js';
import { MessagesQuery } from '../schemas/operator.js';
import { AlarmError } from '../errors.js';
import { SESSION_COOKIE } from '../plugins/auth.js';
import { sessionUser } from '../store/accounts.js';

const require = createRequire(import.meta.url);
/** A file of an installed package, found through its main entry (the packages do not export these paths). */
function read(pkg: string, file: string): string {
  const main = require.resolve(pkg);
  const root = main.slice(0, main.lastIndexOf(`node_modules/${pkg}/`) + `node_modules/${pkg}/`.length);
  return readFileSync(root + file, 'utf8');
}

/**
 * The page's modules, read once from node_modules. Preact's hooks import the bare name "preact", which a browser
 * cannot resolve without an import map (an inline script the policy forbids), so that one import is pointed at
 * the served copy.
 */
function vendorFiles(): Map<string, string> {
  return new Map([
    ['preact.js', read('preact', 'dist/preact.module.js')],
    ['hooks.js', read('preact', 'hooks/dist/hooks.module.js').replace(/from\s*["']preact["']/, 'from "/vendor/preact.js"')],
    ['htm.js', read('htm', 'dist/htm.module.js')],
    ['intl-messageformat.js', read('intl-messageformat', 'intl-messageformat.iife.js')],
  ]);
}

/** How often the stream looks for changes: the audit table grows with every change to an alert. */
export const STREAM_POLL_MS = 500;
/** Open streams at most, in all and per operator (a page per screen is plenty). */
const MAX_STREAMS = 200;
const MAX_STREAMS_PER_OPERATOR = 10;
/** How often open streams' sessions are checked again. */
const SESSION_CHECK_MS = 5_000;
/** A comment line now and then keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 20_000;

const dashboardRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const vendor = vendorFiles();
  app.get('/vendor/:file', { schema: { hide: true } }, async (req, reply) => {
    const body = vendor.get((req.params as { file: string }).file);
    if (body === undefined) return reply.callNotFound();
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(body);
  });

  app.get('/v1/messages', { schema: { tags: ['operator'], querystring: MessagesQuery } }, async (req) => {
    const lang = req.query.lang ?? DEFAULT_LANG;
    return { lang, timeZone: app.config.timeZone, messages: messagesFor(lang, ['centre', 'common']) };
  });

  // Live changes as server-sent events: `change` with the newest audit id whenever something audited changed (every
  // alert change is). The page fetches what it shows; the stream only says when. A stream whose session has ended
  // (logged out, expired) is closed at the next session check.
  const streams = new Map<ServerResponse, string>();
  const perOperator = new Map<string, number>();
  const lastAudit = app.db.prepare('SELECT coalesce(max(id), 0) AS id FROM audit');
  let seen = 0;
  let timer: TimerHandle | undefined;
  let lastKeepalive = 0;
  let lastSessionCheck = 0;
  const send = (data: string) => {
    for (const s of streams.keys()) s.write(data);
  };
  const look = () => {
    timer = undefined;
    if (streams.size === 0) return;
    try {
      if (app.clock.now() - lastSessionCheck >= SESSION_CHECK_MS) {
        lastSessionCheck = app.clock.now();
        for (const [res, token] of streams) if (!sessionUser(app.db, token, lastSessionCheck)) res.end();
      }
      const { id } = lastAudit.get() as { id: number };
      if (id !== seen) {
        seen = id;
        send(`event: change\ndata: ${id}\n\n`);
      } else if (app.clock.now() - lastKeepalive >= KEEPALIVE_MS) {
        lastKeepalive = app.clock.now();
        send(': keepalive\n\n');
      }
    } catch (err) {
      app.log.error({ err }, 'stream look failed');
    }
    timer = app.clock.setTimeout(look, STREAM_POLL_MS);
  };

  app.get('/v1/stream', { preHandler: app.requireRole('operator'), schema: { tags: ['operator'] } }, async (req, reply) => {
    const who = req.operator!.username;
    if (streams.size >= MAX_STREAMS || (perOperator.get(who) ?? 0) >= MAX_STREAMS_PER_OPERATOR) {
      throw new AlarmError('DOSIS_ERR_BUSY', 503, 'too many open streams');
    }
    perOperator.set(who, (perOperator.get(who) ?? 0) + 1);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
    res.write(`retry: 2000\nevent: change\ndata: ${(lastAudit.get() as { id: number }).id}\n\n`);
    streams.set(res, req.cookies[SESSION_COOKIE]!);
    req.raw.on('close', () => {
      streams.delete(res);
      const n = (perOperator.get(who) ?? 1) - 1;
      if (n > 0) perOperator.set(who, n);
      else perOperator.delete(who);
    });
    timer ??= app.clock.setTimeout(look, STREAM_POLL_MS);
  });

  app.addHook('preClose', async () => {
    app.clock.clearTimeout(timer);
    for (const s of streams.keys()) s.end();
    streams.clear();
  });
};
export default dashboardRoutes;

// The alarm centre as a fastify plugin: context (config, clock, database), auth, docs, then routes; one error handler.
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fastifyStatic from '@fastify/static';
import helmet from '@fastify/helmet';
import { Ajv } from 'ajv';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Clock } from '../../protocol/src/clock.js';
import type { AlarmConfig } from './config.js';
import { DEFAULT_CONFIG } from './config.js';
import { AlarmError } from './errors.js';
import context from './plugins/context.js';
import auth from './plugins/auth.js';
import deviceRoutes from './routes/device.js';
import operatorRoutes from './routes/operator.js';
import dashboardRoutes from './routes/dashboard.js';

/**
 * The dashboard's policy: its own scripts, styles and modules only, no framing, nothing inline. Swagger UI at /docs
 * sends its own (with the hashes of its inline parts).
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'media-src': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

/** Bodies are taken as sent: `"5"` is not a number and `"true"` not a boolean. */
const bodyAjv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false });
/** Paths and query strings are text by nature, so their numbers and booleans are read from it. */
const urlAjv = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });

const isDeviceRoute = (url: string) => url.startsWith('/v1/devices/') && /^\/v1\/devices\/[^/]+\/(events|heartbeat)/.test(url);

export type AppOptions = { dbPath: string; clock: Clock; config?: Partial<AlarmConfig> | undefined };

export async function app(fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const bodyLimit = opts.config?.bodyLimitBytes ?? DEFAULT_CONFIG.bodyLimitBytes;
  // Signatures cover the exact bytes sent, so keep them before parsing.
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    req.rawBody = body as Buffer;
    if ((body as Buffer).length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse((body as Buffer).toString('utf8')));
    } catch {
      done(new AlarmError('DOSIS_ERR_BAD_JSON', 400, 'body is not valid JSON'), undefined);
    }
  });

  fastify.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : urlAjv).compile(schema));

  await fastify.register(context, opts);
  await fastify.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    // Cross-origin isolation headers would only get in the way of a same-origin page; the rest are helmet's defaults.
    crossOriginEmbedderPolicy: false,
    frameguard: { action: 'deny' },
  });
  await fastify.register(cookie);
  await fastify.register(auth);
  // 0 turns the limits off, for benchmarks that measure the ingestion path alone.
  if (fastify.config.rateLimitPerMinute > 0) {
    await fastify.register(rateLimit, {
      max: fastify.config.rateLimitPerMinute,
      timeWindow: 60_000,
      // Per address for everything unsigned. Signed device requests are counted per device once verified
      // (plugins/auth.ts) instead: a fleet behind one proxy or carrier NAT shares an address, not a budget.
      keyGenerator: (req) => req.ip,
      allowList: (req) => isDeviceRoute(req.url),
    });
  }
  await fastify.register(swagger, {
    openapi: { info: { title: 'dosis alarm centre', version: '1' }, components: {} },
  });
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Its policy, with framing refused like everywhere else; no upgrade to https, which TLS at a proxy does anyway.
    transformStaticCSP: (header) => header.replace(/upgrade-insecure-requests;?\s*/, '').replace(/frame-ancestors [^;]*/, "frame-ancestors 'none'"),
  });

  fastify.setErrorHandler((err: FastifyError | AlarmError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500 && !(err instanceof AlarmError)) {
      req.log.error({ err }, 'request failed');
      return reply.code(500).send({ statusCode: 500, code: 'DOSIS_ERR_INTERNAL', error: 'Internal Server Error', message: 'internal error' });
    }
    const validation = (err as FastifyError).validation;
    const code = validation ? 'DOSIS_ERR_VALIDATION' : err instanceof AlarmError ? err.code : status === 413 ? 'DOSIS_ERR_TOO_LARGE' : status === 429 ? 'DOSIS_ERR_RATE_LIMIT' : (err.code ?? 'DOSIS_ERR_BAD_REQUEST');
    return reply.code(status).send({ statusCode: status, code, error: reply.raw.statusMessage ?? 'Error', message: err.message });
  });
  fastify.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ statusCode: 404, code: 'DOSIS_ERR_NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );

  // API answers hold contact details and the queue: no browser or proxy keeps a copy.
  // (Callback style: every request passes here, and an async hook costs each one a promise and a later tick.)
  fastify.addHook('onSend', (req, reply, payload, done) => {
    if (req.url.startsWith('/v1/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
  fastify.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  await fastify.register(deviceRoutes);
  await fastify.register(operatorRoutes);
  await fastify.register(dashboardRoutes);
  await fastify.register(fastifyStatic, { root: fileURLToPath(new URL('../public/', import.meta.url)), prefix: '/' });
}

/** A ready-to-inject instance; tests use this and never listen unless they mean to. */
export async function buildApp(opts: AppOptions & { logger?: Logger | undefined }): Promise<FastifyInstance> {
  const fastify = Fastify({
    loggerInstance: opts.logger,
    // Only when told: otherwise anyone could pick their own address (and dodge its rate limit) with X-Forwarded-For.
    trustProxy: opts.config?.trustProxy ?? DEFAULT_CONFIG.trustProxy,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Not encapsulated, so the root instance (and tests) see the decorations such as `db`.
  await fastify.register(fp(app), opts);
  await fastify.ready();
  return fastify as unknown as FastifyInstance;
}

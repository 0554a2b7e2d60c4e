// Config, clock and database decorations: what every route and the scheduler share.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../../protocol/src/clock.js';
import { DEFAULT_CONFIG, type AlarmConfig } from '../config.js';
import { openDatabase, type Db } from '../store/database.js';
import { loadSecretKey, type Role } from '../store/accounts.js';
import { runEscalation } from '../store/alerts.js';
import type { TimerHandle } from '../../../protocol/src/clock.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Db;
    clock: Clock;
    config: AlarmConfig;
    secretKey: Buffer;
    /** One scheduler pass now (the timer calls it too). */
    runScheduler(): number;
  }
  interface FastifyRequest {
    rawBody?: Buffer;
    deviceId?: string;
    operator?: { username: string; role: Role };
  }
}

export type ContextOptions = { dbPath: string; clock: Clock; config?: Partial<AlarmConfig> | undefined };

export default fp(async function context(app: FastifyInstance, opts: ContextOptions) {
  const config: AlarmConfig = { ...DEFAULT_CONFIG, ...opts.config };
  const db = openDatabase(opts.dbPath);
  app.decorate('db', db);
  app.decorate('clock', opts.clock);
  app.decorate('config', config);
  app.decorate('secretKey', loadSecretKey(opts.dbPath, config.secretKeyHex));
  app.decorate('runScheduler', () => runEscalation(db, config, opts.clock.now()));

  // The schedule lives in the database; this timer only decides when to look at it.
  let timer: TimerHandle | undefined;
  let closed = false;
  const tick = () => {
    try {
      app.runScheduler();
    } catch (err) {
      app.log.error({ err }, 'scheduler pass failed');
    }
    if (!closed) timer = opts.clock.setTimeout(tick, config.schedulerTickMs);
  };
  app.addHook('onReady', async () => {
    timer = opts.clock.setTimeout(tick, config.schedulerTickMs);
  });
  app.addHook('onClose', async () => {
    closed = true;
    opts.clock.clearTimeout(timer);
    db.close();
  });
});

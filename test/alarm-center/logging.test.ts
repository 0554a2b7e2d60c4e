// Logging per request: device posts (a fleet's many alike requests) write no per-request lines; other routes keep them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../protocol/src/clock.js';
import { buildApp } from '../../alarm-center/src/app.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { event, KEY, signed, type Fixture } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-log-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function withLog(level: string) {
  const lines: { msg: string; level: number; req?: { url: string } }[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
  const dbPath = join(dir, 'ac.db');
  const clock = new ManualClock();
  const secret = registerDevice(dbPath, 'dev-a', { clock, secretKeyHex: KEY });
  const app = await buildApp({ dbPath, clock, logger: pino({ level }, sink), config: { secretKeyHex: KEY } });
  const f = { app, clock, secrets: { 'dev-a': secret } } as unknown as Fixture;
  return { app, f, lines };
}

describe('request logging', () => {
  it('writes no line per signed device post at info, and keeps them for other routes', async () => {
    const { app, f, lines } = await withLog('info');
    try {
      expect((await app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const about = (url: string) => lines.filter((l) => l.msg === 'incoming request' && l.req?.url.startsWith(url));
      expect(about('/v1/devices/')).toEqual([]);
      expect(about('/healthz')).toHaveLength(1);
      // Refusals are not errors of the centre: still no line.
      expect((await app.inject(signed(f, 'dev-a', '/events', event('low_supply'), { secret: 'wrong' }))).statusCode).toBe(401);
      expect(lines.filter((l) => JSON.stringify(l).includes('/v1/devices/'))).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('logs every request at debug, device posts included', async () => {
    const { app, f, lines } = await withLog('debug');
    try {
      expect((await app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
      expect(lines.filter((l) => l.msg === 'incoming request' && l.req?.url.startsWith('/v1/devices/'))).toHaveLength(1);
    } finally {
      await app.close();
    }
  });
});

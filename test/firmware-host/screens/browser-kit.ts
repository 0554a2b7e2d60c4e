// Shared set-up of the screens' browser tests: Debian's Chromium through playwright-core, a listening screen server on a fake backend.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { type BrowserContext, chromium } from 'playwright-core';
import { ManualClock } from '../../../protocol/src/clock.js';
import { createScreenServer } from '../../../firmware-host/src/screens/server.js';
import { FakeScreenBackend, T0 } from './fake-backend.js';

export const ARTIFACTS = resolve('test-artifacts/screens');

export type BrowserRig = {
  dir: string;
  db: Database.Database;
  clock: ManualClock;
  backend: FakeScreenBackend;
  app: FastifyInstance;
  port: number;
  base: string;
  context: BrowserContext;
  /** Replaces the server by a new one on the same port (the page must reconnect by itself). */
  restartServer(): Promise<void>;
  close(): Promise<void>;
};

export async function startRig(): Promise<BrowserRig> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'dosis-screens-browser-'));
  const db = new Database(join(dir, 'host.db'));
  const clock = new ManualClock(T0);
  const backend = new FakeScreenBackend();
  const make = () => createScreenServer({ backend, db, clock, logger: pino({ level: 'silent' }) });
  let app = make();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  // A persistent context is the one way to give Chromium a fresh user-data-dir of our own.
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      // As on the robot's kiosk: the reminder may sound without a touch first.
      '--autoplay-policy=no-user-gesture-required',
    ],
    viewport: { width: 1024, height: 600 },
    locale: 'da-DK',
    timezoneId: 'UTC',
  });
  const rig: BrowserRig = {
    dir,
    db,
    clock,
    backend,
    app,
    port,
    base: `http://127.0.0.1:${port}`,
    context,
    async restartServer() {
      await rig.app.close();
      app = make();
      await app.listen({ host: '127.0.0.1', port });
      rig.app = app;
    },
    async close() {
      await context.close();
      await rig.app.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

// Used request signatures: kept in time order and purged by it (new and upgraded files alike), by device writes as they go.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, openDatabase } from '../../alarm-center/src/store/database.js';
import { SIGNATURE_HEADER } from '../../protocol/src/centre/signing.js';
import { count, event, makeFixture, reopen, signed } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-sig-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const plan = (db: Database.Database, sql = 'DELETE FROM used_signatures WHERE at_ms < ?') =>
  (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0) as { detail: string }[]).map((r) => r.detail).join('; ');

const sigOf = (req: { headers: Record<string, string> }) => req.headers[SIGNATURE_HEADER]!;

describe('used signatures', () => {
  it('are purged by index, not by reading the whole table', () => {
    const db = openDatabase(join(dir, 'a.db'));
    expect(plan(db, 'DELETE FROM request_signatures WHERE signed_at_ms < ?')).toMatch(/SEARCH request_signatures USING PRIMARY KEY \(signed_at_ms<\?\)/);
    expect(plan(db)).toMatch(/USING (COVERING )?INDEX used_signatures_at/);
    db.close();
  });

  it('get the index when an existing file is upgraded, keeping its rows', () => {
    const path = join(dir, 'b.db');
    const db = openDatabase(path);
    db.prepare('INSERT INTO used_signatures (signature, at_ms) VALUES (?, ?)').run('s1', 5);
    db.exec('DROP INDEX used_signatures_at; DROP TABLE request_signatures; DROP INDEX silences_device');
    // As a file from before the index's migration left it.
    db.pragma(`user_version = ${MIGRATIONS.length - 2}`);
    db.close();
    const again = openDatabase(path);
    expect(plan(again)).toMatch(/INDEX used_signatures_at/);
    expect(again.prepare('SELECT count(*) n FROM used_signatures').get()).toEqual({ n: 1 });
    again.close();
  });

  it('are forgotten by the device writes once older than twice the window, within a second', async () => {
    const f = await makeFixture();
    try {
      expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
      f.clock.advance(2 * 5 * 60_000 + 1);
      expect((await f.app.inject(signed(f, 'dev-a', '/heartbeat', { sentAtMs: f.clock.now(), outboxDepth: 0, link: 'ok', mcu: 'ok', firmwareVersion: '1' }))).statusCode).toBe(200);
      expect(count(f, 'SELECT count(*) n FROM request_signatures')).toBe(1);
    } finally {
      await f.cleanup();
    }
  });

  it('are stored under the time signed, and a replay of one repeats that time and is refused', async () => {
    const f = await makeFixture();
    try {
      const req = signed(f, 'dev-a', '/events', event('low_supply'), { atMs: f.clock.now() - 60_000 });
      expect((await f.app.inject(req)).statusCode).toBe(201);
      expect(f.app.db.prepare('SELECT signed_at_ms AS at, hex(signature) AS sig FROM request_signatures').all())
        .toEqual([{ at: f.clock.now() - 60_000, sig: sigOf(req).toUpperCase() }]);
      f.clock.advance(1_000);
      expect((await f.app.inject(req)).statusCode).toBe(401);
    } finally {
      await f.cleanup();
    }
  });

  it('accepted before an upgrade to request_signatures are still refused as replays until purged', async () => {
    const f = await makeFixture();
    try {
      const before = signed(f, 'dev-a', '/events', event('low_supply'));
      // As a file from before request_signatures (the last migration) left it, with one signature used then.
      await f.app.close();
      const old = new Database(f.dbPath);
      old.exec('DROP TABLE request_signatures; DROP INDEX silences_device');
      old.prepare('INSERT INTO used_signatures (signature, at_ms) VALUES (?, ?)').run(sigOf(before), f.clock.now());
      old.pragma(`user_version = ${MIGRATIONS.length - 1}`);
      old.close();
      await reopen(f);
      f.clock.advance(1_000);
      expect((await f.app.inject(before)).statusCode).toBe(401);
      expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
      // Twice the window later the old rows are purged with the new ones, and the old table is no longer read.
      f.clock.advance(2 * 5 * 60_000 + 1);
      expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
      expect(count(f, 'SELECT count(*) n FROM used_signatures')).toBe(0);
      expect(count(f, 'SELECT count(*) n FROM request_signatures')).toBe(1);
    } finally {
      await f.cleanup();
    }
  });
});

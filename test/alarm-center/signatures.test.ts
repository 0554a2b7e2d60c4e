// Used request signatures: purged by time through an index (new and upgraded files alike), by device writes as they go.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, openDatabase } from '../../alarm-center/src/store/database.js';
import { count, event, makeFixture, signed } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dosis-sig-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const plan = (db: Database.Database) =>
  (db.prepare('EXPLAIN QUERY PLAN DELETE FROM used_signatures WHERE at_ms < ?').all(0) as { detail: string }[]).map((r) => r.detail).join('; ');

describe('used signatures', () => {
  it('are purged by index, not by reading the whole table', () => {
    const db = openDatabase(join(dir, 'a.db'));
    expect(plan(db)).toMatch(/USING (COVERING )?INDEX used_signatures_at/);
    db.close();
  });

  it('get the index when an existing file is upgraded, keeping its rows', () => {
    const path = join(dir, 'b.db');
    const db = openDatabase(path);
    db.prepare('INSERT INTO used_signatures (signature, at_ms) VALUES (?, ?)').run('s1', 5);
    db.exec('DROP INDEX used_signatures_at');
    // As a file from before the index's migration (the last one) left it.
    db.pragma(`user_version = ${MIGRATIONS.length - 1}`);
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
      expect(count(f, 'SELECT count(*) n FROM used_signatures')).toBe(1);
    } finally {
      await f.cleanup();
    }
  });
});

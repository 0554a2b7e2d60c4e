// Decrypted device secrets are cached (bounded, least recently used dropped first) and never outlive a re-registration.
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceSecrets, registerDevice as registerRow } from '../../alarm-center/src/store/accounts.js';
import { registerDevice } from '../../alarm-center/src/server.js';
import { count, event, KEY, makeFixture, signed, type Fixture } from './helpers.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

describe('device secret cache', () => {
  it('decrypts a device secret once for many requests', async () => {
    const before = f.app.deviceSecrets.decrypts;
    for (let i = 0; i < 5; i++) {
      f.clock.advance(1);
      expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
    }
    expect(f.app.deviceSecrets.decrypts - before).toBe(1);
  });

  it('refuses the old secret once the device is registered again from another process, and takes the new one', async () => {
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
    const oldSecret = f.secrets['dev-a']!;
    // Another process on the same file (the CLI): the device is removed and registered anew.
    const other = new Database(f.dbPath);
    other.prepare(`DELETE FROM devices WHERE id = 'dev-a'`).run();
    other.close();
    const newSecret = registerDevice(f.dbPath, 'dev-a', { clock: f.clock, secretKeyHex: KEY });
    f.clock.advance(1);
    const stale = await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply'), { secret: oldSecret }));
    expect(stale.statusCode).toBe(401);
    f.clock.advance(1);
    const fresh = await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply'), { secret: newSecret }));
    expect(fresh.statusCode).toBe(201);
  });

  it('takes the new secret at once after another process registered the device again, without a refused request first', async () => {
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
    const other = new Database(f.dbPath);
    other.prepare(`DELETE FROM devices WHERE id = 'dev-a'`).run();
    other.close();
    const newSecret = registerDevice(f.dbPath, 'dev-a', { clock: f.clock, secretKeyHex: KEY });
    f.clock.advance(1);
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply'), { secret: newSecret }))).statusCode).toBe(201);
    f.clock.advance(1);
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(401);
  });

  it('refuses a request verified with the old secret when the device is registered again before its writes are stored', async () => {
    const oldSecret = f.secrets['dev-a']!;
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
    // Verified with the cached secret, then the registration commits before the request's group is written.
    const secrets = f.app.deviceSecrets;
    const entry = secrets.entry.bind(secrets);
    let armed = true;
    secrets.entry = (deviceId, fresh) => {
      const e = entry(deviceId, fresh);
      if (armed && !f.app.db.inTransaction) {
        armed = false;
        const other = new Database(f.dbPath);
        other.prepare(`DELETE FROM devices WHERE id = 'dev-a'`).run();
        other.close();
        registerDevice(f.dbPath, 'dev-a', { clock: f.clock, secretKeyHex: KEY });
      }
      return e;
    };
    f.clock.advance(1);
    const before = count(f, 'SELECT count(*) n FROM events');
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply'), { secret: oldSecret }))).statusCode).toBe(401);
    expect(count(f, 'SELECT count(*) n FROM events')).toBe(before);
  });

  it('drops the entry when a device is registered through the same database handle', async () => {
    expect((await f.app.inject(signed(f, 'dev-a', '/events', event('low_supply')))).statusCode).toBe(201);
    expect(f.app.deviceSecrets.size).toBe(1);
    f.app.db.prepare(`DELETE FROM devices WHERE id = 'dev-a'`).run();
    registerRow(f.app.db, f.app.secretKey, 'dev-a', f.clock.now());
    expect(f.app.deviceSecrets.size).toBe(0);
  });

  it('is bounded: the least recently used secret is dropped first', () => {
    const cache = new DeviceSecrets(f.app.db, f.app.secretKey, 2);
    expect(cache.get('dev-a')).toBe(f.secrets['dev-a']);
    expect(cache.get('dev-b')).toBe(f.secrets['dev-b']);
    expect(cache.get('dev-a')).toBe(f.secrets['dev-a']);
    expect(cache.decrypts).toBe(2);
    const third = registerRow(f.app.db, f.app.secretKey, 'dev-c', f.clock.now());
    expect(cache.get('dev-c')).toBe(third);
    expect(cache.size).toBe(2);
    // dev-b was the least recently used, so it is decrypted again; dev-a is still held.
    expect(cache.get('dev-a')).toBe(f.secrets['dev-a']);
    expect(cache.decrypts).toBe(3);
    expect(cache.get('dev-b')).toBe(f.secrets['dev-b']);
    expect(cache.decrypts).toBe(4);
    expect(cache.get('nobody')).toBeUndefined();
  });
});

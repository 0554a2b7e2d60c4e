// `dosis alarm-center` commands in-process: help, register-device (secret once), add-operator, usage errors; serving in a child.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../alarm-center/src/cli.js';
import { openDatabase } from '../../alarm-center/src/store/database.js';
import { deviceSecret, loadSecretKey, login } from '../../alarm-center/src/store/accounts.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function capture(argv: string[], stdin = '') {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  const code = await main(argv, { stdin: Readable.from([stdin]) });
  vi.restoreAllMocks();
  return { code, out, err };
}

describe('dosis alarm-center', () => {
  it('prints help for each command', async () => {
    for (const argv of [['--help'], ['register-device', '--help'], ['add-operator', '--help']]) {
      const r = await capture(argv);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Usage: dosis alarm-center/);
    }
  });

  it('registers a device, printing a secret that verifies and is stored encrypted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-cli-'));
    dirs.push(dir);
    const db = join(dir, 'x.db');
    const r = await capture(['register-device', '--id', 'robot-9', '--db', db]);
    expect(r.code).toBe(0);
    const secret = /secret \(shown once\): (\S+)/.exec(r.out)![1]!;
    const d = openDatabase(db);
    expect(deviceSecret(d, loadSecretKey(db), 'robot-9')).toBe(secret);
    expect(JSON.stringify(d.prepare('SELECT * FROM devices').all())).not.toContain(secret);
    d.close();
    const da = await capture(['register-device', '--id', 'robot-10', '--district', 'Østerbro', '--lang', 'da', '--db', db]);
    expect(da.code).toBe(0);
    expect(da.out).toMatch(/^robot robot-10 registreret\nhemmelighed \(vises kun denne ene gang\): \S+\n$/);
    expect((await capture(['register-device', '--id', 'robot-12', '--lang', 'fr', '--db', db])).code).toBe(2);
    expect((await capture(['register-device', '--id', 'robot-11', '--district', '=HYPERLINK()', '--db', db])).code).toBe(1);
    const d2 = openDatabase(db);
    expect(d2.prepare('SELECT id, district FROM devices ORDER BY id').all()).toEqual([{ id: 'robot-10', district: 'Østerbro' }, { id: 'robot-9', district: null }]);
    d2.close();
    const again = await capture(['register-device', '--id', 'robot-9', '--db', db]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already registered/);
  });

  it('adds an operator whose password comes from stdin, never from the command line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-cli-'));
    dirs.push(dir);
    const db = join(dir, 'x.db');
    const added = await capture(['add-operator', '--username', 'sue', '--role', 'supervisor', '--db', db], 'sue-password\nignored');
    expect(added.code).toBe(0);
    expect(added.out).not.toContain('sue-password');
    const d = openDatabase(db);
    expect(await login(d, 'sue', 'sue-password', { now: () => 0 }, 1000)).toMatchObject({ ok: true, role: 'supervisor' });
    d.close();
    const flag = await capture(['add-operator', '--username', 'sam', '--password', 'sam-password', '--db', db]);
    expect(flag.code).toBe(2);
    expect(flag.err).toMatch(/password/);
    expect((await capture(['add-operator', '--username', 'sam', '--db', db], '')).code).toBe(2);
    const gen = await capture(['add-operator', '--username', 'sam', '--generate-password', '--db', db]);
    expect(gen.code).toBe(0);
    const pw = /password: (\S+)/.exec(gen.out)![1]!;
    const d2 = openDatabase(db);
    expect((await login(d2, 'sam', pw, { now: () => 0 }, 1000)).ok).toBe(true);
    d2.close();
  });

  it('refuses bad options and settings with exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosis-cli-'));
    dirs.push(dir);
    const db = join(dir, 'x.db');
    expect((await capture(['add-operator', '--username', 'x1', '--role', 'king', '--db', db])).code).toBe(2);
    expect((await capture(['--bogus'])).code).toBe(2);
    expect((await capture(['--port', 'abc'])).code).toBe(2);
  });
});

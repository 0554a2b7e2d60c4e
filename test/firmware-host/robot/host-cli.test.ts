// `dosis host` refuses a field-device misconfiguration before it starts: one line on stderr, exit 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../../bin/dosis.js');
const dir = mkdtempSync(join(tmpdir(), 'dosis-host-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = (...args: string[]) => spawnSync(process.execPath, [BIN, 'host', ...args], { encoding: 'utf8', timeout: 20_000 });

describe('dosis host configuration', () => {
  it('refuses no alarm centre, a secret others can read, and a bad config field, each with one line', () => {
    const db = join(dir, 'robot.db');
    const none = host('--port', '/dev/null', '--db', db);
    expect(none.status).toBe(2);
    expect(none.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--alarm-center is required.*--no-alarm-center/)]);

    const secret = join(dir, 'secret');
    writeFileSync(secret, 'abc\n', { mode: 0o644 });
    const open = host('--port', '/dev/null', '--db', db, '--alarm-center', 'http://127.0.0.1:1', '--device-id', 'R-1', '--device-secret-file', secret);
    expect(open.status).toBe(2);
    expect(open.stderr.trim().split('\n')).toEqual([expect.stringMatching(/readable by other users \(mode 644\)/)]);

    const config = join(dir, 'host.json');
    writeFileSync(config, JSON.stringify({ port: '/dev/null', db, 'no-alarm-center': true, 'time-zone': 'Nowhere/Town' }));
    const bad = host('--config', config);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/"time-zone" in .*host\.json is not an IANA time zone/)]);
  });
});

// `dosis roll`: the real command in a child process for the exit codes, the rest in-process for speed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../firmware-host/src/roll/cli.js';
import { MAX_MANIFEST_BYTES } from '../../../firmware-host/src/roll/validate.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = 'test/firmware-host/roll/fixtures';
const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'dosis-roll-cli-'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs main() with stdout and stderr captured. */
async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('dosis roll validate, as a process', () => {
  it('exits 0 for a valid roll and prints its summary', async () => {
    const file = 'firmware-host/examples/roll-dst-march-2027.json';
    const { stdout } = await run(process.execPath, ['bin/dosis.js', 'roll', 'validate', file, '--citizen', 'C7F3A9B2', '--now', '2027-03-01T00:00:00+01:00'], { cwd: ROOT });
    expect(stdout.trim().split('\n')).toEqual([
      `${file}: /pouches/12/intakeTime: warning dst_gap: position 13: 2027-03-28 02:30 does not exist in Europe/Copenhagen (clocks go forward 60 min); taken as 2027-03-28 03:30 (+02:00) = 2027-03-28T01:30:00Z`,
      `${file}: valid, 28 pouches due 2027-03-25T01:30:00Z to 2027-03-31T18:00:00Z (0 errors, 1 warning)`,
    ]);
  });

  it('exits 1 for an invalid roll, one line per problem with where it is', async () => {
    const file = `${FIXTURES}/wrong_citizen.json`;
    const err = await run(process.execPath, ['bin/dosis.js', 'roll', 'validate', file, '--citizen', 'C7F3A9B2', '--now', '2027-05-01T00:00:00Z'], { cwd: ROOT }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stdout: string }).stdout.trim().split('\n')).toEqual([
      `${file}: /citizenId: error wrong_citizen: the manifest is for citizen "C0000001", this robot serves citizen "C7F3A9B2"`,
      `${file}: invalid (1 error, 0 warnings)`,
    ]);
  });
});

describe('dosis roll, in-process', () => {
  const now = ['--now', '2027-05-01T00:00:00Z'];

  it('lists validate in --help, and answers an unknown subcommand with one line and exit 2', async () => {
    const help = await capture(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^ {2}validate +check a roll manifest/m);
    const bad = await capture(['lode', 'x.json']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('dosis roll: unknown subcommand "lode" (see: dosis roll --help)\n');
    expect((await capture([])).code).toBe(2);
  });

  it('exits 2 for an unreadable file, and throws a usage error for bad arguments', async () => {
    const missing = await capture(['validate', join(tmp, 'nope.json'), ...now]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^dosis roll validate: cannot read .*nope\.json: ENOENT/);
    await expect(capture(['validate', 'a.json', 'b.json'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
    await expect(capture(['validate', 'a.json', '--now', '2027-05-01T00:00'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
    await expect(capture(['validate', 'a.json', '--slots', '0'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
    await expect(capture(['validate', 'a.json', '--profile', 'no-such-robot'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
  });

  it('takes the slot count from --slots over the profile, and prints JSON with --json', async () => {
    const r = await capture(['validate', `${FIXTURES}/valid.json`, '--slots', '6', '--json', ...now]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ ok: false, errors: 1, warnings: 0, pouches: [] });
    expect(doc.problems).toEqual([{ path: '/pouches', code: 'too_many_pouches', severity: 'error', message: '8 pouches, the carousel holds 6' }]);
    const ok = await capture(['validate', `${FIXTURES}/valid.json`, '--json', ...now]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).pouches).toHaveLength(8);
  });

  it('reports a not-JSON file with its line and column, and a huge file without reading it whole', async () => {
    const bad = await capture(['validate', `${FIXTURES}/not_json.json`, ...now]);
    expect(bad.code).toBe(1);
    expect(bad.out.split('\n')[0]).toBe(`${FIXTURES}/not_json.json: 18:5: error not_json: not JSON: unexpected character "{", expected "," or "]" at line 18, column 5`);
    const huge = join(tmp, 'huge.json');
    writeFileSync(huge, Buffer.alloc(MAX_MANIFEST_BYTES * 2, 0x20));
    const big = await capture(['validate', huge, ...now]);
    expect(big.code).toBe(1);
    expect(big.out).toContain(': /: error too_large: ');
  });

  it('prints the JSON Schema document', async () => {
    const r = await capture(['schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ title: 'dosis roll manifest', type: 'object' });
  });
});

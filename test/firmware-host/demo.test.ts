// `dosis demo` as a user runs it: a child process that prints its URLs, serves the citizen page, narrates dosings and quits on stdin.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../bin/dosis.js');
let child: ChildProcessWithoutNullStreams | undefined;
let dir: string | undefined;

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Resolves with the first stdout match of `re`, or rejects after `ms` of wall time. */
function waitFor(output: () => string, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      const m = output().match(re);
      if (m) return resolve(m);
      if (Date.now() - started > ms) return reject(new Error(`no ${re} within ${ms} ms; output:\n${output()}`));
      setTimeout(check, 50);
    };
    check();
  });
}

describe('dosis demo', () => {
  it('prints its URLs, serves the citizen page, narrates a classified dosing, and quits on stdin', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dosis-demo-'));
    const proc = spawn(process.execPath, [BIN, 'demo', '--speed', '600', '--port-screen', '0', '--port-alarm', '0', '--data', dir, '--seed', '3', '--forget', '0'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));

    const citizen = (await waitFor(() => out, /citizen screen:\s+(http:\/\/\S+)/, 15_000))[1]!;
    const dashboard = (await waitFor(() => out, /alarm dashboard:\s+(http:\/\/\S+)/, 1_000))[1]!;
    const pharmacy = (await waitFor(() => out, /pharmacy screen:\s+(http:\/\/\S+\/pharmacy)\s+\(log in as (\S+) \/ (\d+)/, 1_000));
    // The demo's staff login works on its pharmacy screen.
    const login = await fetch(pharmacy[1]!.replace(/\/pharmacy$/, '/api/pharmacy/login'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ staffId: pharmacy[2], pin: pharmacy[3] }),
    });
    expect(login.status).toBe(200);
    const page = await fetch(citizen);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    expect((await fetch(dashboard)).status).toBe(200);

    const dosing = await waitFor(() => out, /dosing: dose \S+: \w+ \((correct|green|yellow)\)/, 30_000);
    expect(['correct', 'green', 'yellow']).toContain(dosing[1]);
    expect(out).toMatch(/reminder: dose \S+ is due/);
    expect(out).toMatch(/dispensing \S+: rotating/);

    proc.stdin.write('status\n');
    await waitFor(() => out, /robot \w+.*alarm outbox \d+/, 5_000);
    proc.stdin.write('example\n');
    await waitFor(() => out, /example roll \S+ written to \S+example-roll\.json|is due now; try "example" again/, 5_000);
    proc.stdin.write('fault nosuchfault 1\n');
    await waitFor(() => out, /usage: fault NAME RATE/, 5_000);
    proc.stdin.write('quit\n');
    expect(await exited).toBe(0);
    expect(out).toMatch(/closed\n$/);
    expect(err).not.toMatch(/Error/);
    expect(existsSync(join(dir, 'robot.db'))).toBe(true);
    expect(existsSync(join(dir, 'demo.log'))).toBe(true);
  }, 60_000);

  it('--help exits 0 and lists the options; a bad option exits 2 with one line', () => {
    const help = spawnSync(process.execPath, [BIN, 'demo', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: dosis demo/);
    for (const opt of ['--speed', '--port-screen', '--port-alarm', '--data', '--keep', '--seed', '--faults', '--forget']) expect(help.stdout).toContain(opt);

    const bad = spawnSync(process.execPath, [BIN, 'demo', '--no-such-option'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);

    const badSpeed = spawnSync(process.execPath, [BIN, 'demo', '--speed', 'fast'], { encoding: 'utf8' });
    expect(badSpeed.status).toBe(2);
    expect(badSpeed.stderr).toMatch(/--speed/);

    const badFault = spawnSync(process.execPath, [BIN, 'demo', '--faults', 'gremlins=1'], { encoding: 'utf8' });
    expect(badFault.status).toBe(2);
    expect(badFault.stderr).toMatch(/gremlins/);
  }, 30_000);
});

// npm run build: dist/ runs every command on plain node, from any working directory, with the data files it reads.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtDist } from './dist-kit.js';

let dist: string;
let cwd: string;

beforeAll(() => {
  dist = builtDist();
  // Far from the checkout, so a path that only resolves from the sources fails here.
  cwd = mkdtempSync(join(tmpdir(), 'dosis-build-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** `node dist/bin/dosis.js …` with no loader: NODE_OPTIONS cleared so tsx cannot slip in. */
function dosis(args: string[]) {
  return spawnSync(process.execPath, [join(dist, 'bin', 'dosis.js'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 20_000 });
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

describe('the build', () => {
  it('compiles every shipped part to JavaScript that needs no TypeScript loader', () => {
    for (const part of ['protocol', 'firmware-host', 'device-sim', 'alarm-center', 'hardware', 'bin']) expect(existsSync(join(dist, part))).toBe(true);
    expect(existsSync(join(dist, 'test'))).toBe(false);
    const compiled = jsFiles(dist).filter((f) => !f.includes('/public/') && !f.includes('/node_modules/'));
    expect(compiled.length).toBeGreaterThan(50);
    for (const f of compiled) expect(readFileSync(f, 'utf8'), f).not.toMatch(/from ['"]tsx|import\(['"][^'"]+\.ts['"]\)/);
  });

  it('runs dosis --help and every command\'s --help', () => {
    const top = dosis(['--help']);
    expect(top.status, top.stderr).toBe(0);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]!);
    expect(commands).toEqual(expect.arrayContaining(['demo', 'sim', 'host', 'soak', 'roll', 'alarm-center']));
    for (const c of commands) {
      const r = dosis([c, '--help']);
      expect(r.status, `${c}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('Usage: dosis');
    }
  });

  it('validates an example roll against the hardware profile shipped in dist', () => {
    const r = dosis(['roll', 'validate', join(dist, 'firmware-host', 'examples', 'roll-2week.json'), '--now', '2027-01-01T00:00:00Z']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/valid, 56 pouches/);
  });

  it('runs the soak with worker processes (compiled workers, no tsx)', () => {
    // The reference profile: this checks the compiled workers, not the robot (the harsh profile's reds are the soak's own tests).
    const r = dosis(['soak', '--dosings', '40', '--workers', '2', '--seed', '1', '--profile', 'reference']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dosings 40 /);
  });

  it('runs the demo: the citizen screen, the pharmacy screen and the alarm dashboard serve their pages', async () => {
    const child = spawn(process.execPath, [join(dist, 'bin', 'dosis.js'), 'demo', '--speed', '600', '--port-screen', '0', '--port-alarm', '0', '--data', join(cwd, 'demo')], {
      cwd, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const urls: Record<string, string> = {};
      for await (const line of createInterface({ input: child.stdout })) {
        const m = /^\s+(citizen screen|pharmacy screen|alarm dashboard):\s+(\S+)/.exec(line);
        if (m) urls[m[1]!] = m[2]!;
        if (Object.keys(urls).length === 3) break;
      }
      expect(Object.keys(urls), stderr).toHaveLength(3);
      for (const [page, marker] of [[urls['citizen screen']!, '<html'], [`${urls['citizen screen']}static/citizen.js`, ''], [urls['pharmacy screen']!, '<html'], [urls['alarm dashboard']!, '<html'], [`${urls['alarm dashboard']}app.js`, '']] as const) {
        const res = await fetch(page);
        expect(res.status, page).toBe(200);
        expect(await res.text()).toContain(marker);
      }
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
  });
});

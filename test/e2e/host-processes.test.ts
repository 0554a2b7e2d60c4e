// The robot as it ships, as real processes from the build: `dosis alarm-center`, `dosis sim --pty` and `dosis host`
// configured like a device in the field. A dose nobody takes reaches the centre as one alert; the host is SIGKILLed and
// restarted, and the centre then holds that alert still once, plus the power_lost / power_restored pair of the unclean
// stop. Last, an error in the dose controller reaches the centre as a device fault and ends the host with status 70.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../protocol/src/clock.js';
import { Store } from '../../firmware-host/src/store/store.js';
import { pouchLabel } from '../../firmware-host/src/roll/types.js';
import { builtDist } from '../bin/dist-kit.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The `dosis` entry every process is started from. */
const DOSIS = join(builtDist(), 'bin', 'dosis.js');
const DEVICE = 'R-E2E-1';
const OPERATOR = { username: 'op', password: 'e2e-password' };

const dir = mkdtempSync(join(tmpdir(), 'dosis-e2e-host-'));
const children: ChildProcess[] = [];
afterAll(async () => {
  // SIGTERM, so that the simulator closes its socat pair; SIGKILL whatever did not stop within 5 s.
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  const late = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), 5_000);
  await Promise.all(exited);
  clearTimeout(late);
  rmSync(dir, { recursive: true, force: true });
});

type Proc = { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> };

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [DOSIS, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 50_000) err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function line(p: Proc, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = p.out().match(re);
    if (m) return m;
    if (Date.now() > end || p.child.exitCode !== null) throw new Error(`no ${re} within ${ms} ms; stdout:\n${p.out()}\nstderr:\n${p.err().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function dosis(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, [DOSIS, ...args], { cwd: ROOT, encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`dosis ${args.join(' ')}: ${r.status}\n${r.stderr}`);
  return r.stdout;
}

type Alert = { id: number; deviceId: string; type: string; doseId: string | null; state: string; outcome: string | null; reportCount: number };

describe('dosis host as shipped, with the alarm centre and the simulator as processes', () => {
  it('a dose nobody takes reaches the centre once; a SIGKILL is a power_lost / power_restored pair; a controller error a device fault and exit 70', async () => {
    const centreDb = join(dir, 'centre.db');
    const robotDb = join(dir, 'robot.db');
    const secretFile = join(dir, 'device-secret');
    const secret = /secret \(shown once\): (\S+)/.exec(dosis(['alarm-center', 'register-device', '--id', DEVICE, '--db', centreDb]))![1]!;
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    dosis(['alarm-center', 'add-operator', '--username', OPERATOR.username, '--role', 'operator', '--db', centreDb], `${OPERATOR.password}\n`);

    // The robot is set up for its citizen first: the one command that creates its database.
    const commission = spawnSync(process.execPath, [DOSIS, 'robot', 'commission', '--citizen', 'C-E2E', '--staff', 'root', '--pin-stdin', '--db', robotDb], { cwd: ROOT, input: '9090\n', encoding: 'utf8' });
    expect(commission.status, commission.stderr).toBe(0);

    const centre = start(['alarm-center', '--port', '0', '--db', centreDb]);
    const centreUrl = (await line(centre, /alarm centre listening on (http:\/\/\S+)/, 20_000))[1]!;
    const sim = start(['sim', '--pty', '--seed', '5']);
    const hostPort = (await line(sim, /host port: (\S+)/, 20_000))[1]!;
    const hostArgs = [
      'host', '--port', hostPort, '--db', robotDb, '--device-id', DEVICE, '--alarm-center', centreUrl, '--device-secret-file', secretFile,
      '--screens-port', '0', '--log-level', 'warn',
    ];
    let host = start(hostArgs);
    const citizenUrl = (await line(host, /citizen screen:\s+(http:\/\/\S+)/, 20_000))[1]!;
    await line(host, /hello: MCU/, 20_000);

    // The pharmacy's roll, written to the robot's file by another process as `dosis roll load` does: one dose in 2 s,
    // overdue 3 s after its time, missed 6 s after.
    const clock = new SystemClock();
    const store = Store.open(robotDb, { clock });
    // The host commits with fsync; with the rest of the suite writing to the same disk one may take seconds.
    store.db.pragma('busy_timeout = 30000');
    const doseId = pouchLabel('E2E', 1);
    store.loadRoll({
      rollId: 'E2E', citizenId: 'C-E2E',
      pouches: [{ rollId: 'E2E', position: 1, slot: 0, label: doseId, intakeAtMs: clock.now() + 2_000, pillCount: 2, timing: { earlyMin: 0, overdueAfterMin: 0.05, closeAfterMin: 0.1, reminderEveryMin: 1 } }],
    }, 'anna');
    store.close();

    const login = await fetch(`${centreUrl}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(OPERATOR) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const api = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${centreUrl}${path}`, { headers: { cookie } });
      expect(r.status, path).toBe(200);
      return (await r.json()) as T;
    };
    const alerts = async () => (await api<{ alerts: Alert[] }>('/v1/alerts?all=true')).alerts.filter((a) => a.deviceId === DEVICE);

    await expect.poll(async () => (await alerts()).find((a) => a.doseId === doseId)?.type, { timeout: 60_000, interval: 250 }).toBe('missed_dose');
    const devices = await api<{ deviceId: string; lastHeartbeatAtMs: number | null; link: string | null; status: string }[]>('/v1/devices');
    expect(devices.find((d) => d.deviceId === DEVICE)).toMatchObject({ status: 'ok', link: 'ok' });
    expect(devices.find((d) => d.deviceId === DEVICE)!.lastHeartbeatAtMs).toBeGreaterThan(0);
    const page = await fetch(citizenUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const before = (await alerts()).find((a) => a.doseId === doseId)!;

    host.child.kill('SIGKILL');
    await host.exited;
    host = start(hostArgs);
    await line(host, /did not stop cleanly/, 20_000);
    await line(host, /hello: MCU/, 20_000);
    await expect.poll(async () => (await alerts()).filter((a) => a.type === 'power_lost').map((a) => [a.state, a.outcome]), { timeout: 20_000, interval: 250 })
      .toEqual([['cancelled', 'power_restored']]);
    const after = await alerts();
    expect(after.filter((a) => a.doseId === doseId)).toEqual([before]);
    // A one-pouch roll is also a low supply; nothing else reached the centre.
    expect(after.map((a) => a.type).sort()).toEqual(['low_supply', 'missed_dose', 'power_lost']);
    // The daily figures came with the heartbeats: the month's report counts the missed dose.
    await expect.poll(async () => (await api<{ missed: number }[]>('/v1/reports/fleet')).reduce((n, r) => n + r.missed, 0), { timeout: 10_000, interval: 250 }).toBe(1);
    expect((await fetch((await line(host, /citizen screen:\s+(http:\/\/\S+)/, 20_000))[1]!)).status).toBe(200);
    expect(host.err()).not.toMatch(/"level":(50|60)/);

    // An error in the dose controller: another process holds the robot's store locked when the next dose goes overdue,
    // longer than the store waits. The error is recorded once the store is free, reaches the centre as a device fault,
    // and the host ends with status 70 for its service manager to restart it.
    const next = Store.open(robotDb, { clock });
    const dueAtMs = clock.now() + 5_000;
    next.loadRoll({
      rollId: 'E2F', citizenId: 'C-E2E',
      pouches: [{ rollId: 'E2F', position: 1, slot: 0, label: pouchLabel('E2F', 1), intakeAtMs: dueAtMs, pillCount: 2, timing: { earlyMin: 0, overdueAfterMin: 0, closeAfterMin: 1, reminderEveryMin: 1 } }],
    }, 'anna');
    await new Promise((r) => setTimeout(r, dueAtMs - 500 - clock.now()));
    next.db.exec('BEGIN EXCLUSIVE');
    // Longer than two of the store's 5 s waits: the dose machine's write fails, and so does the first try to record it.
    await new Promise((r) => setTimeout(r, 12_000));
    next.db.exec('COMMIT');
    next.close();
    const exit = await Promise.race([host.exited, new Promise((r) => setTimeout(() => r('still running'), 40_000))]);
    expect(exit, `stdout:\n${host.out()}\nstderr:\n${host.err().slice(-3000)}`).toBe(70);
    expect(host.out()).toMatch(/error: the dose controller failed/);
    await expect.poll(async () => (await alerts()).filter((a) => a.type === 'device_fault').length, { timeout: 10_000, interval: 250 }).toBe(1);
  }, 180_000);
});

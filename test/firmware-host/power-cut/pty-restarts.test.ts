// Restarts at the worst moments, over a real pseudo-terminal: `dosis host` SIGKILLed with the dose in the cup, and in
// the last seconds of a window while the MCU is silent at the RELEASE.
//
// The simulator runs in this process on one end of a socat pty pair (its cup, ledger and command memory outlive the
// host), `dosis host` in a child process on the other end, on the wall clock with fast mechanics. The checks read the
// simulator's ledger, not only the host's records.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock, type Clock } from '../../../protocol/src/clock.js';
import type { Transport } from '../../../protocol/src/transport.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { createPtyPair, keepSerialAttached } from '../../../device-sim/src/pty.js';
import { Store } from '../../../firmware-host/src/store/store.js';
import { doseWindows } from '../../../firmware-host/src/dosing/dose-machine.js';
import type { DoseTiming } from '../../../firmware-host/src/roll/types.js';
import { referee, scenarioRoll } from '../scenarios/kit.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const QUICK_PROFILE = fileURLToPath(new URL('../scenarios/fixtures/dosis-r1-quick.json', import.meta.url));
const silent = pino({ level: 'silent' });

class HostProcess {
  readonly child: ChildProcess;
  readonly statuses: string[] = [];
  err = '';
  readonly exited: Promise<void>;

  constructor(file: string, port: string) {
    this.child = spawn(process.execPath, ['bin/dosis.js', 'host', '--port', port, '--db', file, '--profile', QUICK_PROFILE, '--no-alarm-center', '--screens-port', '0', '--log-level', 'error'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    let buffer = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('status: ')) this.statuses.push(line.slice(8));
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => void (this.err += d.toString()));
  }

  get status(): string {
    return this.statuses.at(-1) ?? '';
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

function until(clock: Clock, pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = clock.now() + timeoutMs;
  return new Promise((resolve) => {
    const tick = () => (pred() ? resolve(true) : clock.now() > end ? resolve(false) : clock.setTimeout(tick, 10));
    tick();
  });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A simulator on a pty and a store on a fresh file; `onLine` sees each line the MCU receives before it does. */
async function robot(timing: DoseTiming, onLine: (line: string, sim: DeviceSimulator) => void = () => undefined) {
  const clock = new SystemClock();
  const profile = loadProfile(QUICK_PROFILE);
  const dir = mkdtempSync(join(tmpdir(), 'dosis-pty-restart-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'robot.db');
  const pair = await createPtyPair({ clock });
  cleanups.push(() => pair.close());
  const sim = new DeviceSimulator({ clock, profile, seed: 31, logger: silent });
  const watched = (t: Transport): Transport => ({
    get isOpen() {
      return t.isOpen;
    },
    write: (line) => t.write(line),
    onLine: (fn) => t.onLine((line) => (onLine(line, sim), fn(line))),
    onClose: (fn) => t.onClose(fn),
    close: () => t.close(),
  });
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(watched(t)), clock, retryMs: 20 });
  cleanups.push(() => sim.stop(), detach);
  const store = Store.open(file, { clock, timing });
  cleanups.push(() => store.close());
  const hosts: HostProcess[] = [];
  cleanups.push(() => Promise.all(hosts.map((h) => h.kill())));
  const boot = () => {
    const h = new HostProcess(file, pair.hostPath);
    hosts.push(h);
    return h;
  };
  return { clock, sim, store, boot, hosts, profile };
}

describe('restarts over a pseudo-terminal', () => {
  it('SIGKILL with the dose in the cup; the cup is taken and put back while the host is down: taken, and the next dose is not refused', async () => {
    const timing: DoseTiming = { earlyMin: 0.05, reminderEveryMin: 1, overdueAfterMin: 0.5, closeAfterMin: 0.75 };
    const r = await robot(timing);
    const pouches = scenarioRoll('P', r.clock.now(), [3, 2], 0, 60_000).map((p, i) => ({ ...p, intakeAtMs: r.clock.now() + 4000 + i * 25_000, timing }));
    r.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    r.store.loadRoll({ rollId: 'P', citizenId: 'C1', pouches }, 'anna');
    let host = r.boot();
    expect(await until(r.clock, () => /^(early|due)/.test(host.status), 20_000)).toBe(true);
    r.sim.pressButton();
    expect(await until(r.clock, () => host.status.startsWith('presented'), 20_000)).toBe(true);
    await host.kill();
    r.sim.takeCup();
    await new Promise((res) => setTimeout(res, 300));
    r.sim.placeCup();
    host = r.boot();
    expect(await until(r.clock, () => r.store.dose('P-001')!.finalAtMs !== null, 20_000)).toBe(true);
    expect(r.store.dose('P-001')).toMatchObject({ state: 'taken', cls: 'correct' });
    // Dose 2: pressed as soon as it opens; the empty cup must not be refused.
    expect(await until(r.clock, () => /^(early|due)/.test(host.status) && host.status.includes('P-002'), 60_000)).toBe(true);
    r.sim.pressButton();
    expect(await until(r.clock, () => host.status.startsWith('presented'), 20_000)).toBe(true);
    r.sim.takeCup();
    expect(await until(r.clock, () => r.store.dose('P-002')!.finalAtMs !== null, 20_000)).toBe(true);
    expect(r.store.dose('P-002')).toMatchObject({ state: 'taken', cls: 'correct' });
    expect(r.hosts.flatMap((h) => h.statuses).filter((s) => s.includes('cup_not_empty'))).toEqual([]);
    expect(r.sim.ledger.takes.map((t) => t.pills)).toEqual([3, 2]);
    expect(referee(r.store, r.sim.ledger).violations).toEqual([]);
    expect(r.hosts.map((h) => h.err).join('')).toBe('');
  }, 120_000);

  it.each([
    ['the host waits it out', false],
    ['the host is SIGKILLed and back', true],
  ])('a press 1 s before the close, the MCU silent for 5 s as the RELEASE arrives, %s: nothing cut after the close, never "missed"', async (_name, kill) => {
    const timing: DoseTiming = { earlyMin: 0.05, reminderEveryMin: 1, overdueAfterMin: 0.1, closeAfterMin: 0.2 };
    let silenced = false;
    const r = await robot(timing, (line, sim) => {
      if (silenced || !line.includes('RELEASE')) return;
      silenced = true;
      // This line starts 5 s of silence; none after it does.
      sim.setFault('notAnswering', 1);
      setTimeout(() => sim.setFault('notAnswering', 0), 5);
    });
    const intakeAtMs = r.clock.now() + 4000;
    const pouches = scenarioRoll('Q', r.clock.now(), [3], 0).map((p) => ({ ...p, intakeAtMs, timing }));
    const closeAtMs = doseWindows(intakeAtMs, timing, null).closeAtMs;
    r.sim.loadPouches(pouches.map((p) => ({ slot: p.slot, label: p.label, pills: p.pillCount })));
    r.store.loadRoll({ rollId: 'Q', citizenId: 'C1', pouches }, 'anna');
    let host = r.boot();
    expect(await until(r.clock, () => /^(due|overdue)/.test(host.status), 20_000)).toBe(true);
    expect(await until(r.clock, () => r.clock.now() >= closeAtMs - 1000, 20_000)).toBe(true);
    r.sim.pressButton();
    expect(await until(r.clock, () => silenced, 5000)).toBe(true);
    if (kill) {
      // The host dies waiting for the RELEASE's ack, and is back within the silence.
      await host.kill();
      host = r.boot();
    }
    // The citizen takes the cup if the robot asks for it (within the grace after the close).
    expect(await until(r.clock, () => r.store.dose('Q-001')!.finalAtMs !== null || host.status.startsWith('presented'), 60_000)).toBe(true);
    if (host.status.startsWith('presented')) r.sim.takeCup();
    expect(await until(r.clock, () => r.store.dose('Q-001')!.finalAtMs !== null, 20_000)).toBe(true);
    const d = r.store.dose('Q-001')!;
    const late = r.sim.ledger.entries.filter((e) => e.pillsFell > 0 && e.atMs > closeAtMs);
    expect(late.map((e) => `${e.action} ${e.atMs - closeAtMs} ms after the close`)).toEqual([]);
    expect(d.state).not.toBe('missed');
    expect(referee(r.store, r.sim.ledger).violations).toEqual([]);
    expect(r.hosts.map((h) => h.err).join('')).toBe('');
  }, 120_000);
});

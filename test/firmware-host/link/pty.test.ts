// The host link over a real socat pseudo-terminal with serialport on both ends: hello, a dispense, unplug and re-plug.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../../protocol/src/clock.js';
import type { DeviceEvent } from '../../../protocol/src/catalogue.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { DeviceSimulator } from '../../../device-sim/src/simulator.js';
import { createPtyPair, keepSerialAttached, type PtyPair } from '../../../device-sim/src/pty.js';
import { DeviceLink } from '../../../firmware-host/src/link/link.js';
import { SerialTransport } from '../../../hardware/src/serial-transport.js';
import { pouchLabel } from '../../../firmware-host/src/roll/types.js';
import { silent } from './rig.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (pred()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

async function setup(): Promise<{ pair: PtyPair; sim: DeviceSimulator; link: DeviceLink; events: DeviceEvent[] }> {
  const clock = new SystemClock();
  // A quicker robot: faster carousel, cutter and label reader; pills still fall over the real spread, so the test stays short.
  const base = loadProfile('dosis-r1');
  const profile = { ...base, settleMs: 600, cutMs: 40, labelReadMs: 20, stepsPerSecond: 20_000, heartbeatMs: 200 };
  const pair = await createPtyPair();
  cleanups.push(() => pair.close());
  const sim = new DeviceSimulator({ clock, profile, seed: 3, logger: silent });
  sim.loadPouches(Array.from({ length: profile.slotCount }, (_, slot) => ({ slot, label: pouchLabel('P', slot + 1), pills: 5 })));
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(t), clock, logger: silent, retryMs: 50 });
  cleanups.push(() => sim.stop(), detach);
  const link = new DeviceLink({ clock, profile, logger: silent, open: () => SerialTransport.open(pair.hostPath, profile.baudRate) });
  cleanups.push(() => link.close());
  const events: DeviceEvent[] = [];
  link.on('event', (e) => events.push(e));
  link.start();
  await until(() => link.state === 'ready', 5000, 'hello');
  return { pair, sim, link, events };
}

describe('DeviceLink over a real pseudo-terminal', () => {
  it('says hello, dispenses a pouch and counts its pills', async () => {
    const { sim, link, events } = await setup();
    expect(link.hello?.boot).toBe(sim.bootId);
    expect(await link.request({ name: 'ROTATE', id: '0000A001', slot: 7, lease: 3000, dl: 60_000 })).toMatchObject({ result: 'OK' });
    await until(() => events.some((e) => e.name === 'ROTATED'), 5000, 'ROTATED');
    expect(events.find((e) => e.name === 'ROTATED')).toMatchObject({ slot: 7, label: 'P-008' });
    expect(await link.request({ name: 'RELEASE', id: '0000A002', slot: 7, lease: 3000, dl: 60_000 })).toMatchObject({ result: 'OK' });
    await until(() => events.some((e) => e.name === 'RELEASED'), 5000, 'RELEASED');
    expect(events.find((e) => e.name === 'RELEASED')).toMatchObject({ n: 5, empty: 1 });
    expect(sim.ledger.pillsFellFromSlot(7)).toBe(5);
    expect(sim.ledger.executions('0000A002')).toBe(1);
  });

  it('loses the link when the pty is unplugged and reconnects by path when it comes back', async () => {
    const { pair, link } = await setup();
    const states: string[] = [];
    link.on('state', (s) => states.push(s));
    await pair.unplug();
    await until(() => link.state === 'lost', 5000, 'lost after unplug');
    await pair.replug();
    await until(() => link.state === 'ready', 10_000, 'ready after replug');
    expect(states).toContain('lost');
    expect(link.stats.reconnects).toBeGreaterThan(0);
    expect(await link.request({ name: 'STATUS' })).toMatchObject({ result: 'OK' });
  });
});

describe('dosis sim --pty and dosis host in two processes', () => {
  it('shows the hello and a manual test dispense with its pill count', async () => {
    const sim = spawn(process.execPath, ['bin/dosis.js', 'sim', '--pty', '--pills', '4', '--seed', '5', '--log-level', 'warn'], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(() => new Promise((r) => (sim.exitCode !== null ? r(undefined) : (sim.once('exit', r), sim.kill('SIGTERM')))));
    let simOut = '';
    sim.stdout.on('data', (d: Buffer) => (simOut += d.toString()));
    await until(() => /host port: (\S+)/.test(simOut), 15_000, 'the simulator to print its port');
    const port = /host port: (\S+)/.exec(simOut)![1]!;
    const host = spawn(process.execPath, ['bin/dosis.js', 'host', '--port', port, '--dispense-slot', '3', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let hostOut = '';
    host.stdout.on('data', (d: Buffer) => (hostOut += d.toString()));
    const code = await new Promise<number | null>((r) => host.once('exit', r));
    expect(hostOut).toMatch(/hello: MCU dosis-r1 firmware/);
    expect(hostOut).toMatch(/slot 3: label DEMO-004/);
    expect(hostOut).toMatch(/released slot 3: 4 pulses .* → 4 pills; pouch empty/);
    expect(code).toBe(0);
  }, 40_000);

  it('answers a wrong option with one line and exit 2', async () => {
    const p = spawn(process.execPath, ['bin/dosis.js', 'host', '--bogus'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/--bogus/);
  });
});

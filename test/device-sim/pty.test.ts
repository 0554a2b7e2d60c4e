// The simulator over a real socat pseudo-terminal pair, with serialport on both ends; unplug and replug.
import { describe, it, expect, afterEach } from 'vitest';
import pino from 'pino';
import { SystemClock } from '../../protocol/src/clock.js';
import { decodeFrame, encodeFrame, type Frame } from '../../protocol/src/frame.js';
import { CATALOGUE_HASH, PROTOCOL_VERSION } from '../../protocol/src/catalogue.js';
import { loadProfile } from '../../hardware/src/profile.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';
import { DeviceSimulator } from '../../device-sim/src/simulator.js';
import { createPtyPair, keepSerialAttached, type PtyPair } from '../../device-sim/src/pty.js';

/** Upper bound of each wait: a pty's close is seen by polling, slow on a loaded machine (each wait ends as soon as it holds). */
const WAIT_MS = 15_000;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = () => (cond() ? resolve(true) : Date.now() - start > ms ? resolve(false) : setTimeout(tick, 10));
    tick();
  });
}

async function openHost(pair: PtyPair, frames: Frame[]): Promise<SerialTransport> {
  const t = await SerialTransport.open(pair.hostPath, 115200);
  t.onLine((line) => {
    const r = decodeFrame(line);
    if (r.ok) {
      frames.push(r.frame);
      if (r.frame.kind === 'E') t.write(encodeFrame({ kind: 'A', seq: r.frame.seq, body: 'OK' }));
    }
  });
  cleanups.push(() => t.close());
  return t;
}

describe('simulator over a pty', () => {
  it('answers HELLO, sends heartbeats, and re-attaches after unplug/replug', async () => {
    const clock = new SystemClock();
    const profile = { ...loadProfile('dosis-r1'), heartbeatMs: 100 };
    const pair = await createPtyPair();
    cleanups.push(() => pair.close());
    const sim = new DeviceSimulator({ clock, profile, seed: 3, logger: pino({ level: 'silent' }) });
    cleanups.push(() => sim.stop());
    let attaches = 0;
    const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, clock, retryMs: 50, attach: (t) => (attaches++, sim.attach(t)) });
    cleanups.push(detach);
    expect(await waitFor(() => attaches === 1, WAIT_MS)).toBe(true);

    const frames: Frame[] = [];
    const host = await openHost(pair, frames);
    host.write(encodeFrame({ kind: 'C', seq: 5, body: `HELLO,v=${PROTOCOL_VERSION},cat=${CATALOGUE_HASH}` }));
    expect(await waitFor(() => frames.some((f) => f.kind === 'A' && f.seq === 5), WAIT_MS)).toBe(true);
    expect(frames.find((f) => f.kind === 'A')!.body).toContain(`boot=${sim.bootId}`);
    expect(await waitFor(() => frames.filter((f) => f.kind === 'H').length >= 2, WAIT_MS)).toBe(true);
    expect(frames.find((f) => f.kind === 'H')!.body).toBe(`HB,boot=${sim.bootId},st=idle,cup=1`);

    let hostClosed = false;
    host.onClose(() => (hostClosed = true));
    await pair.unplug();
    expect(await waitFor(() => hostClosed && !sim.status().attached, WAIT_MS)).toBe(true);
    await pair.replug();
    expect(await waitFor(() => attaches === 2, WAIT_MS)).toBe(true);
    const frames2: Frame[] = [];
    const host2 = await openHost(pair, frames2);
    host2.write(encodeFrame({ kind: 'C', seq: 6, body: 'STATUS' }));
    expect(await waitFor(() => frames2.some((f) => f.kind === 'A' && f.seq === 6), WAIT_MS)).toBe(true);
    expect(frames2.find((f) => f.kind === 'A')!.body).toBe(`OK,st=idle,slot=0,cup=1,boot=${sim.bootId},lifts=0`);
  });

  it('says how to install socat when it is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    cleanups.push(() => (process.env.PATH = path));
    await expect(createPtyPair()).rejects.toMatchObject({ code: 'DOSIS_ERR_NO_SOCAT', message: expect.stringContaining('apt-get install socat') });
  });
});

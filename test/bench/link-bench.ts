// Protocol and link speed: frame encode+decode per second in memory, and command round trips per second over a real pty.
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { SystemClock } from '../../protocol/src/clock.js';
import { decodeFrame, encodeFrame } from '../../protocol/src/frame.js';
import { decodeEvent, encodeEvent } from '../../protocol/src/catalogue.js';
import { loadProfile } from '../../hardware/src/profile.js';
import { DeviceSimulator } from '../../device-sim/src/simulator.js';
import { createPtyPair, keepSerialAttached } from '../../device-sim/src/pty.js';
import { DeviceLink } from '../../firmware-host/src/link/link.js';
import { SerialTransport } from '../../hardware/src/serial-transport.js';

export type LinkFigures = { framesPerSecond: number; ptyRoundTripsPerSecond: number; ptyRoundTripMeanMs: number };

/** Frames with a RELEASED body (the longest the link carries), encoded and decoded, body included. */
function benchFrames(durationMs: number): number {
  const body = encodeEvent({ name: 'RELEASED', id: '0A0B0C0D', slot: 17, n: 5, w: [12, 11, 13, 12, 24], empty: 1 });
  let n = 0;
  let check = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 1000; i++) {
      const line = encodeFrame({ kind: 'E', seq: i & 255, body });
      const d = decodeFrame(line.slice(0, -1));
      if (d.ok) {
        const ev = decodeEvent(d.frame.body);
        if (ev.ok) check++;
      }
    }
    n += 1000;
  }
  if (check !== n) throw new Error(`frame bench: ${n - check} frames did not round-trip`);
  return n / ((performance.now() - start) / 1000);
}

/** STATUS commands through the host link, a simulator on the far end of a socat pty, one at a time. */
async function benchPty(count: number): Promise<{ perSecond: number; meanMs: number }> {
  const clock = new SystemClock();
  const silent = pino({ level: 'silent' });
  const profile = loadProfile('dosis-r1');
  const pair = await createPtyPair();
  const sim = new DeviceSimulator({ clock, profile, seed: 1, logger: silent });
  const detach = keepSerialAttached({ path: pair.simPath, baudRate: profile.baudRate, attach: (t) => sim.attach(t), clock, logger: silent, retryMs: 50 });
  const link = new DeviceLink({ clock, profile, logger: silent, open: () => SerialTransport.open(pair.hostPath, profile.baudRate) });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = clock.setTimeout(() => reject(new Error('link not ready within 5 s')), 5000);
      link.on('ready', () => {
        clock.clearTimeout(t);
        resolve();
      });
      link.start();
    });
    const start = performance.now();
    for (let i = 0; i < count; i++) await link.request({ name: 'STATUS' });
    const s = (performance.now() - start) / 1000;
    return { perSecond: count / s, meanMs: (s * 1000) / count };
  } finally {
    link.close();
    sim.stop();
    detach();
    await pair.close();
  }
}

export async function benchLink(): Promise<LinkFigures> {
  const framesPerSecond = benchFrames(2000);
  process.stdout.write(`frames encoded+decoded (RELEASED event, body parsed): ${Math.round(framesPerSecond).toLocaleString('en')}/s\n`);
  const pty = await benchPty(2000);
  process.stdout.write(`STATUS round trips over a socat pty at ${loadProfile('dosis-r1').baudRate} baud: ${Math.round(pty.perSecond)}/s (mean ${pty.meanMs.toFixed(2)} ms)\n`);
  return { framesPerSecond, ptyRoundTripsPerSecond: pty.perSecond, ptyRoundTripMeanMs: pty.meanMs };
}

// `dosis sim`: option errors, and the stdin control channel acting on a simulator.
import { describe, it, expect } from 'vitest';
import pino from 'pino';
import { ManualClock } from '../../protocol/src/clock.js';
import { loadProfile } from '../../hardware/src/profile.js';
import { DeviceSimulator } from '../../device-sim/src/simulator.js';
import { control, main } from '../../device-sim/src/cli.js';

function sim(): DeviceSimulator {
  return new DeviceSimulator({ clock: new ManualClock(), profile: loadProfile('dosis-r1'), seed: 1, logger: pino({ level: 'silent' }) });
}

describe('dosis sim', () => {
  it('rejects a run without a port and a bad fault spec', async () => {
    await expect(main([])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
    await expect(main(['--pty', '--faults', 'nope=1'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE', message: expect.stringContaining('nope') });
    await expect(main(['--pty', '--port', '/tmp/x'])).rejects.toMatchObject({ code: 'DOSIS_ERR_USAGE' });
  });

  it('control lines act as the citizen, set faults, reset and report', () => {
    const s = sim();
    expect(control(s, 'take')).toMatch(/^ok/);
    expect(s.cupPresent).toBe(false);
    expect(control(s, 'place')).toMatch(/^ok/);
    expect(s.cupPresent).toBe(true);
    expect(control(s, 'fault jam=0.5')).toBe('ok: jam=0.5\n');
    expect(s.faults.jam).toBe(0.5);
    expect(control(s, 'fault jam=7')).toMatch(/^error/);
    expect(control(s, 'fault bogus=0.1')).toMatch(/^error: unknown fault/);
    const boot = s.bootId;
    expect(control(s, 'reset')).toContain(s.bootId);
    expect(s.bootId).not.toBe(boot);
    expect(JSON.parse(control(s, 'status'))).toMatchObject({ bootId: s.bootId, cupPresent: true, faults: { jam: 0.5 } });
    expect(control(s, 'help')).toContain('press');
    expect(control(s, 'dance')).toMatch(/^error: unknown control/);
    expect(control(s, 'press')).toMatch(/^ok/);
    s.stop();
  });
});

describe('dosis sim --pty (real process)', () => {
  it('prints the host port, answers over it, takes control lines and stops cleanly on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const { existsSync } = await import('node:fs');
    const { SerialTransport } = await import('../../hardware/src/serial-transport.js');
    const { encodeFrame, decodeFrame } = await import('../../protocol/src/frame.js');
    const { CATALOGUE_HASH } = await import('../../protocol/src/catalogue.js');
    const proc = spawn(process.execPath, ['bin/dosis.js', 'sim', '--pty', '--pills', '2', '--seed', '9', '--log-level', 'silent'], {
      cwd: new URL('../../', import.meta.url).pathname,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      const until = async (re: RegExp) => {
        // Generous: a loaded machine (the suite runs files side by side) may take seconds to start the process.
        for (let i = 0; i < 750 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 20));
        return re.exec(out);
      };
      const m = await until(/host port: (\S+)\n/);
      expect(m).not.toBeNull();
      // The seed comes in a write of its own, after the port's.
      expect(await until(/seed: 9\n/)).not.toBeNull();
      const hostPath = m![1]!;
      const t = await SerialTransport.open(hostPath, 115200);
      const acks: string[] = [];
      t.onLine((l) => {
        const r = decodeFrame(l);
        if (r.ok && r.frame.kind === 'A') acks.push(r.frame.body);
      });
      t.write(encodeFrame({ kind: 'C', seq: 1, body: `HELLO,v=1,cat=${CATALOGUE_HASH}` }));
      for (let i = 0; i < 400 && acks.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(acks[0]).toMatch(/^OK,v=1,.*hw=dosis-r1/);
      proc.stdin.write('take\nstatus\n');
      expect(await until(/"cupPresent":false/)).not.toBeNull();
      t.close();
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(existsSync(hostPath)).toBe(false);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });
});

// One assembly: the demo and `dosis host` build the same parts of the robot, and the host's config is checked field by field.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PacedClock, SystemClock } from '../../../protocol/src/clock.js';
import { loadProfile } from '../../../hardware/src/profile.js';
import { startDemoSystem, type DemoSystem } from '../../../device-sim/src/demo/system.js';
import { Robot } from '../../../firmware-host/src/robot.js';
import { TIME_ZONE_META } from '../../../firmware-host/src/store/store.js';
import { hostRobotConfig, readConfigFile, readDeviceSecret, resolveSettings } from '../../../firmware-host/src/host-config.js';

const silent = pino({ level: 'silent' });
const profile = loadProfile('dosis-r1');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosis-assembly-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function hostRobot(dir: string, flags: Record<string, string | boolean>): Robot {
  const settings = resolveSettings({ port: '/dev/null', db: join(dir, 'host.db'), 'screens-port': '0', ...flags });
  const robot = new Robot(hostRobotConfig(settings, { clock: new SystemClock(), profile, logger: silent, secret: settings.alarm ? 'secret' : null }));
  cleanups.push(() => robot.close());
  return robot;
}

describe('the robot assembly', () => {
  it('the demo and dosis host assemble the same parts', async () => {
    const dir = tempDir();
    const clock = new PacedClock(600, new SystemClock().now());
    clock.start();
    cleanups.push(() => clock.stop());
    const demo: DemoSystem = await startDemoSystem({
      dataDir: join(dir, 'demo'), clock, speed: 600, profile, seed: 1, serial: 'memory', portScreen: 0, portAlarm: 0, logger: silent,
    });
    cleanups.push(() => demo.close());
    const host = hostRobot(dir, { 'alarm-center': 'http://127.0.0.1:8470', 'device-id': 'R-1', 'device-secret-file': '/unused' });
    expect(demo.robot.parts).toEqual(host.parts);
    expect(host.parts).toEqual(['store', 'running-mark', 'fault-watch', 'link', 'controller', 'supply-watch', 'alarm-delivery', 'screen-backend', 'screens']);
    // Without a centre the host has no delivery, and the screens carry the notice from the message catalogue.
    const alone = hostRobot(dir, { 'no-alarm-center': true, db: join(dir, 'alone.db') });
    expect(alone.parts).not.toContain('alarm-delivery');
    expect((await alone.backend()).citizenView().notices?.map((n) => n.code)).toEqual(['no_alarm_centre']);
    expect((await alone.backend()).pharmacyView().notices?.[0]?.text.en).toMatch(/not connected to an alarm centre/);
    expect((await host.backend()).citizenView().notices).toBeUndefined();
  });

  it("records the host's zone in its database, for the receipts of the commands staff run on it", () => {
    const dir = tempDir();
    const robot = hostRobot(dir, { 'no-alarm-center': true, 'time-zone': 'America/Nuuk' });
    expect(robot.store.getMeta(TIME_ZONE_META)).toBe('America/Nuuk');
  });
});

describe('dosis host settings', () => {
  const base = { port: '/dev/ttyACM0', db: '/tmp/r.db' };
  const centre = { 'alarm-center': 'https://alarm.example', 'device-id': 'R-7', 'device-secret-file': '/etc/dosis/secret' };

  it('refuses to start without an alarm centre unless told, and checks each field with a one-line reason', () => {
    expect(() => resolveSettings(base)).toThrow(/--alarm-center is required/);
    expect(resolveSettings({ ...base, 'no-alarm-center': true }).alarm).toBeNull();
    expect(() => resolveSettings({ ...base, ...centre, 'no-alarm-center': true })).toThrow(/contradicts --no-alarm-center/);
    expect(() => resolveSettings({ ...base, ...centre, 'device-id': 'Ann Hansen' })).toThrow(/--device-id must be 1-64/);
    expect(() => resolveSettings({ ...base, ...centre, 'alarm-center': 'ftp://x' })).toThrow(/http or https/);
    expect(() => resolveSettings({ ...base, ...centre, 'screens-port': '70000' })).toThrow(/--screens-port must be a whole number from 0 to 65535/);
    expect(() => resolveSettings({ ...base, ...centre, 'time-zone': 'Mars/Olympus' })).toThrow(/--time-zone is not an IANA time zone/);
    const s = resolveSettings({ ...base, ...centre });
    expect(s).toMatchObject({ alarm: { url: 'https://alarm.example', deviceId: 'R-7' }, screens: { port: 8480, host: '127.0.0.1' }, timeZone: 'Europe/Copenhagen' });
    for (const f of [() => resolveSettings(base), () => resolveSettings({ ...base, ...centre, 'screens-port': 'x' })]) {
      expect(() => f()).toThrow();
      try {
        f();
      } catch (err) {
        expect((err as Error).message.split('\n')).toHaveLength(1);
      }
    }
  });

  it('accepts the config file the install kit ships', () => {
    const file = join(import.meta.dirname, '../../../hardware/config/host.json');
    expect(resolveSettings({}, readConfigFile(file), file)).toMatchObject({ port: '/dev/dosis-mcu', alarm: { deviceId: 'R-0042' }, screens: { port: 8480, host: '127.0.0.1' } });
  });

  it('reads a config file with the same keys; flags win; a bad field names the file', () => {
    const dir = tempDir();
    const file = join(dir, 'host.json');
    writeFileSync(file, JSON.stringify({ ...base, ...centre, 'screens-port': 9000, 'time-zone': 'Europe/Berlin' }));
    const fromFile = readConfigFile(file);
    expect(resolveSettings({}, fromFile, file)).toMatchObject({ port: '/dev/ttyACM0', screens: { port: 9000 }, timeZone: 'Europe/Berlin' });
    expect(resolveSettings({ 'screens-port': '9100' }, fromFile, file).screens.port).toBe(9100);
    writeFileSync(file, JSON.stringify({ ...base, ...centre, 'screens-port': -1 }));
    expect(() => resolveSettings({}, readConfigFile(file), file)).toThrow(new RegExp(`"screens-port" in ${file} must be a whole number`));
    writeFileSync(file, JSON.stringify({ ...base, colour: 'blue' }));
    expect(() => readConfigFile(file)).toThrow(/unknown key "colour"/);
    writeFileSync(file, '{ not json');
    expect(() => readConfigFile(file)).toThrow(/not JSON/);
  });

  it('refuses a secret file that group or others can read, as ssh refuses a key', () => {
    const dir = tempDir();
    const file = join(dir, 'secret');
    writeFileSync(file, 'abc123\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(() => readDeviceSecret(file)).toThrow(/readable by other users \(mode 644\); chmod 600/);
    chmodSync(file, 0o640);
    expect(() => readDeviceSecret(file)).toThrow(/mode 640/);
    chmodSync(file, 0o600);
    expect(readDeviceSecret(file)).toBe('abc123');
    expect(() => readDeviceSecret(join(dir, 'missing'))).toThrow(/cannot read it \(ENOENT\)/);
  });
});

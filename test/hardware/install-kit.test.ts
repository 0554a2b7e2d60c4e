// hardware/: the systemd units parse as systemd reads them and start what the build produces; udev rule, config and
// kiosk agree with each other and with `dosis host`'s options.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY, ROOT } from '../../bin/build.js';
import { builtDist } from '../bin/dist-kit.js';

const HW = join(ROOT, 'hardware');
/** Where hardware/README.md installs the checkout; the units name paths under it. */
const INSTALL_ROOT = '/opt/dosis';
/** Programs the README installs on the board that a development machine may lack. */
const BOARD_PROGRAMS = ['/usr/bin/cage', '/usr/bin/chromium', '/usr/bin/node'];

type Unit = Map<string, Map<string, string[]>>;

// Directives the units may use, by section: a misspelt or misplaced one fails here even without systemd-analyze.
const KNOWN: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'Wants', 'Requires', 'After', 'Before', 'Conflicts', 'StartLimitIntervalSec', 'StartLimitBurst', 'ConditionPathExists'],
  Service: [
    'Type', 'User', 'Group', 'SupplementaryGroups', 'ExecStart', 'ExecStartPre', 'WorkingDirectory', 'Environment', 'Restart', 'RestartSec', 'RestartPreventExitStatus', 'KillSignal',
    'TimeoutStopSec', 'TimeoutStartSec', 'StateDirectory', 'StateDirectoryMode', 'UMask',
    'NoNewPrivileges', 'CapabilityBoundingSet', 'AmbientCapabilities', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'DevicePolicy', 'DeviceAllow',
    'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectClock', 'ProtectHostname', 'ProtectProc',
    'RestrictAddressFamilies', 'RestrictNamespaces', 'RestrictRealtime', 'RestrictSUIDSGID', 'LockPersonality', 'RemoveIPC', 'SystemCallArchitectures',
    'SystemCallFilter', 'SystemCallErrorNumber', 'PAMName', 'TTYPath', 'TTYReset', 'TTYVHangup', 'TTYVTDisallocate', 'StandardInput', 'StandardOutput',
    'StandardError', 'UtmpIdentifier', 'UtmpMode',
  ],
  Install: ['WantedBy', 'Alias'],
};

/** A strict reading of systemd's unit syntax: sections, Key=Value lines, comments; nothing else. */
function parseUnit(text: string, name: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  let sectionName = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const where = `${name}:${i + 1}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    if (line.endsWith('\\')) throw new Error(`${where}: continuation lines are not used in these units`);
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) {
      sectionName = sec[1]!;
      if (!KNOWN[sectionName]) throw new Error(`${where}: unknown section [${sectionName}]`);
      if (unit.has(sectionName)) throw new Error(`${where}: section [${sectionName}] twice`);
      unit.set(sectionName, (section = new Map()));
      return;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv) throw new Error(`${where}: not Key=Value: ${JSON.stringify(line)}`);
    if (!section) throw new Error(`${where}: directive outside a section`);
    const [, key, value] = kv;
    if (!KNOWN[sectionName]!.includes(key!)) throw new Error(`${where}: ${key} is not a directive of [${sectionName}] here`);
    section.set(key!, [...(section.get(key!) ?? []), value!]);
  });
  return unit;
}

const units = readdirSync(join(HW, 'systemd')).filter((f) => f.endsWith('.service')).sort();
const read = (f: string) => readFileSync(join(HW, 'systemd', f), 'utf8');
const one = (u: Unit, sec: string, key: string) => {
  const v = u.get(sec)?.get(key);
  expect(v, `${sec}.${key}`).toHaveLength(1);
  return v![0]!;
};
const host = parseUnit(read('dosis-host.service'), 'dosis-host.service');
const kiosk = parseUnit(read('dosis-kiosk.service'), 'dosis-kiosk.service');
const config = JSON.parse(readFileSync(join(HW, 'config', 'host.json'), 'utf8')) as Record<string, string | number>;

const work = mkdtempSync(join(tmpdir(), 'dosis-units-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('systemd units', () => {
  it('are the host and the kiosk', () => {
    expect(units).toEqual(['dosis-host.service', 'dosis-kiosk.service']);
  });

  it.each(units)('%s passes systemd-analyze verify without a warning', (file) => {
    const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (analyze.error) {
      // No systemd here: the strict parse above stands in for it.
      expect(() => parseUnit(read(file), file)).not.toThrow();
      return;
    }
    // Programs the board has and this machine may not are swapped for a stub; anything else must exist as named.
    const stub = join(work, 'stub');
    writeFileSync(stub, '#!/bin/sh\n', { mode: 0o755 });
    let text = read(file);
    for (const prog of BOARD_PROGRAMS) {
      if (!existsSync(prog)) text = text.split(prog).join(stub);
    }
    writeFileSync(join(work, file), text);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(work, file)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs the host from the build, restarts it on failure, as its own user, never giving up', () => {
    const argv = one(host, 'Service', 'ExecStart').split(' ');
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/node', join(INSTALL_ROOT, 'dist', ENTRY)]);
    expect(argv.slice(2)).toEqual(['host', '--config', '/etc/dosis/host.json']);
    expect(one(host, 'Service', 'Restart')).toBe('on-failure');
    // Only a usage error (exit 2) is not worth a restart; a fatal error (non-zero otherwise) or a signal is.
    expect(one(host, 'Service', 'RestartPreventExitStatus')).toBe('2');
    expect(one(host, 'Service', 'User')).toBe('dosis');
    expect(one(host, 'Unit', 'StartLimitIntervalSec')).toBe('0');
    // The store sits in the state directory, the one place the hardened service may write.
    expect(one(host, 'Service', 'ProtectSystem')).toBe('strict');
    expect(config.db).toBe(`/var/lib/${one(host, 'Service', 'StateDirectory')}/robot.db`);
    expect(String(config['device-secret-file']).startsWith('/etc/dosis/')).toBe(true);
    // Serial devices only.
    expect(one(host, 'Service', 'DevicePolicy')).toBe('closed');
    expect(host.get('Service')!.get('DeviceAllow')).toEqual(['char-ttyACM rw', 'char-ttyUSB rw']);
  });

  it('the built entry point is where the host unit looks for it, and takes the options the unit and the config use', () => {
    const dist = builtDist();
    expect(existsSync(join(dist, ENTRY))).toBe(true);
    const help = spawnSync(process.execPath, [join(dist, ENTRY), 'host', '--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    const options = new Set([...help.stdout.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!));
    expect(options).toContain('config');
    for (const key of Object.keys(config)) expect(options, `host.json key "${key}"`).toContain(key);
    expect(Object.keys(config)).toEqual(expect.arrayContaining(['port', 'db', 'device-id', 'alarm-center', 'device-secret-file', 'screens-port']));
  });

  it('shows the citizen screen full-screen from the port the host serves it on, and always comes back', () => {
    expect(one(kiosk, 'Service', 'Environment')).toBe(`DOSIS_SCREENS_PORT=${config['screens-port']}`);
    expect(config['screens-host']).toBe('127.0.0.1');
    const argv = one(kiosk, 'Service', 'ExecStart').split(' ');
    expect(argv.slice(0, 3)).toEqual(['/usr/bin/cage', '-d', '--']);
    expect(argv[3]).toBe('/usr/bin/chromium');
    expect(argv).toContain('--kiosk');
    expect(argv.at(-1)).toBe('http://127.0.0.1:${DOSIS_SCREENS_PORT}/');
    expect(one(kiosk, 'Service', 'Restart')).toBe('always');
    expect(kiosk.get('Unit')!.get('After')!.join(' ')).toContain('dosis-host.service');
    expect(one(kiosk, 'Service', 'User')).not.toBe(one(host, 'Service', 'User'));
  });
});

describe('udev rule', () => {
  const text = readFileSync(join(HW, 'udev', '99-dosis-mcu.rules'), 'utf8');
  const rules = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));

  it('is one rule of well-formed udev pairs', () => {
    expect(rules).toHaveLength(1);
    const pair = /^(SUBSYSTEM|KERNEL|ATTRS\{[a-zA-Z_]+\}|ENV\{[A-Z_]+\}|SYMLINK|GROUP|MODE|TAG)(==|\+=|=)"([^"]*)"$/;
    for (const p of rules[0]!.split(/,\s*/)) expect(p, p).toMatch(pair);
  });

  it('names the device the config opens, for the group the host runs in, and tags it for systemd', () => {
    const pairs = new Map(rules[0]!.split(/,\s*/).map((p) => {
      const m = /^(.+?)(==|\+=|=)"(.*)"$/.exec(p)!;
      return [`${m[1]}${m[2]}`, m[3]!] as const;
    }));
    expect(pairs.get('SUBSYSTEM==')).toBe('tty');
    expect(`/dev/${pairs.get('SYMLINK+=')}`).toBe(config.port);
    expect(pairs.get('GROUP=')).toBe(one(host, 'Service', 'SupplementaryGroups'));
    expect(pairs.get('MODE=')).toBe('0660');
    expect(pairs.get('TAG+=')).toBe('systemd');
    expect(pairs.get('ENV{ID_MM_DEVICE_IGNORE}=')).toBe('1');
    // The host unit waits for that device's systemd unit.
    expect(one(host, 'Unit', 'After')).toContain(`dev-${String(pairs.get('SYMLINK+=')).replace(/-/g, '\\x2d')}.device`);
  });
});

// The simulated MCU's protocol side: acks, errors, duplicate seqs, naks, event retransmission, leases, ids.
import { describe, it, expect } from 'vitest';
import { encodeFrame } from '../../protocol/src/frame.js';
import { rotationMs } from '../../hardware/src/profile.js';
import { Host, field } from './harness.js';

const ID = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

describe('DeviceSimulator protocol', () => {
  it('answers HELLO with version, catalogue, profile, firmware and boot id; other hash → ERR:VERSION', () => {
    const h = new Host();
    const ack = h.ack(h.hello());
    expect(field(ack, 'hw')).toBe('dosis-r1');
    expect(field(ack, 'boot')).toBe(h.sim.bootId);
    expect(ack.startsWith('OK,v=1,cat=')).toBe(true);
    expect(h.ack(h.cmd('HELLO,v=1,cat=DEADBEEF'))).toBe('ERR:VERSION');
    expect(h.ack(h.cmd('HELLO,v=2,cat=DEADBEEF'))).toBe('ERR:VERSION');
  });

  it('sends BOOT at power-up and heartbeats every heartbeatMs', () => {
    const h = new Host();
    h.run(3 * h.profile.heartbeatMs + 10);
    expect(h.distinctEvents('BOOT')).toEqual([`BOOT,boot=${h.sim.bootId},fw=1.0.0,hw=dosis-r1`]);
    const hbs = h.rx.filter((r) => r.frame?.kind === 'H');
    expect(hbs.map((r) => r.frame!.body)).toEqual(Array(3).fill(`HB,boot=${h.sim.bootId},st=idle,cup=1`));
    expect(hbs[1]!.atMs - hbs[0]!.atMs).toBe(h.profile.heartbeatMs);
  });

  it('answers STATUS, SIGNAL and unknown or malformed bodies with the acknowledged seq', () => {
    const h = new Host();
    const s = h.cmd('STATUS', 42);
    expect(h.ack(s)).toBe(`OK,st=idle,slot=0,cup=1,boot=${h.sim.bootId},lifts=0`);
    expect(h.ack(h.cmd('SIGNAL,mode=remind'))).toBe('OK');
    expect(h.sim.status().signal).toBe('remind');
    expect(h.ack(h.cmd('DANCE,x=1'))).toBe('ERR:UNKNOWN');
    expect(h.ack(h.cmd('ROTATE,id=00000001,slot=x,lease=5000,dl=600000'))).toBe('ERR:BAD_FIELD');
    expect(h.ack(h.cmd('ROTATE,id=00000001,slot=1'))).toBe('ERR:BAD_FIELD');
    expect(h.ack(h.cmd('SIGNAL,mode=loud'))).toBe('ERR:BAD_FIELD');
  });

  it('naks a corrupt line (not an empty one), at most once per 20 ms', () => {
    const h = new Host();
    const good = encodeFrame({ kind: 'C', seq: 3, body: 'STATUS' });
    h.raw(good.replace('STATUS', 'STATVS'));
    h.raw('\n');
    h.raw('garbage\n');
    h.run(15);
    const naks = h.frames('N');
    expect(naks).toHaveLength(1);
    expect(naks[0]!.body).toBe('bad_crc');
    expect(h.acks(3)).toEqual([]);
    h.run(20);
    h.raw('$C,1,STATUS*0000\n');
    h.run(10);
    expect(h.frames('N').map((f) => f.body)).toEqual(['bad_crc', 'bad_crc']);
    expect(h.frames('N').map((f) => f.seq)).toEqual([0, 1]);
  });

  it('executes a repeated seq once and re-sends the same ack; HELLO clears the window', () => {
    const h = new Host();
    h.cmd(`ROTATE,id=${ID(1)},slot=3,lease=5000,dl=600000`, 7);
    h.cmd(`ROTATE,id=${ID(1)},slot=3,lease=5000,dl=600000`, 7);
    h.run(50);
    expect(h.acks(7)).toEqual(['OK', 'OK']);
    expect(h.sim.ledger.executions(ID(1))).toBe(1);
    h.waitEvent('ROTATED');
    // Same seq, other body: still the remembered ack, nothing executed.
    h.cmd(`ROTATE,id=${ID(2)},slot=4,lease=5000,dl=600000`, 7);
    h.run(50);
    expect(h.sim.ledger.executions(ID(2))).toBe(0);
    // A FAULT whose fault name reads HELLO is no HELLO: the window stays.
    expect(h.ack(h.cmd('FAULT,fault=HELLO,p=1'))).toBe('ERR:BAD_FIELD');
    h.cmd(`ROTATE,id=${ID(2)},slot=4,lease=5000,dl=600000`, 7);
    h.run(50);
    expect(h.sim.ledger.executions(ID(2))).toBe(0);
    h.hello();
    h.run(50);
    h.cmd(`ROTATE,id=${ID(2)},slot=4,lease=5000,dl=600000`, 7);
    h.run(50);
    expect(h.sim.ledger.executions(ID(2))).toBe(1);
  });

  it('retransmits an event with doubling backoff capped at 1 s until acked; a host NAK retransmits at once', () => {
    const h = new Host();
    h.autoAck = false;
    h.run(4000);
    const boots = h.rx.filter((r) => r.frame?.kind === 'E').map((r) => r.atMs - h.rx[0]!.atMs);
    const gaps = boots.slice(1).map((t, i) => Math.round(t - boots[i]!));
    expect(gaps.slice(0, 4)).toEqual([60, 120, 240, 480]);
    expect(gaps.slice(5)).toEqual(gaps.slice(5).map(() => 1000));
    const seq = h.frames('E')[0]!.seq;
    const before = h.frames('E').length;
    h.raw(encodeFrame({ kind: 'N', seq: 0, body: 'bad_crc' }));
    h.run(15);
    expect(h.frames('E').length).toBe(before + 1);
    h.raw(encodeFrame({ kind: 'A', seq, body: 'OK' }));
    h.run(5);
    const after = h.frames('E').length;
    h.run(5000);
    expect(h.frames('E').length).toBe(after);
    expect(h.sim.status().unackedEvents).toBe(0);
  });

  it('rotates in rotationMs + labelReadMs and reports slot and label', () => {
    const h = new Host();
    const t0 = h.clock.now();
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=10,lease=5000,dl=600000`));
    const ev = h.waitEvent('ROTATED');
    expect(ev).toBe(`ROTATED,id=${ID(1)},slot=10,label=DEMO-011`);
    const at = h.rx.find((r) => r.frame?.body === ev)!.atMs - t0;
    const expected = rotationMs(h.profile, 0, 10) + h.profile.labelReadMs;
    expect(at).toBeGreaterThanOrEqual(expected);
    expect(at).toBeLessThan(expected + 20);
    expect(h.ack(h.cmd('STATUS'))).toContain('slot=10');
  });

  it('releases: one pulse per pill, empty=1, pills in the cup, cut map survives power cycles', () => {
    const h = new Host();
    h.ack(h.cmd(`RELEASE,id=${ID(1)},slot=2,lease=5000,dl=600000`));
    const ev = h.waitEvent('RELEASED');
    expect(field(ev, 'n')).toBe('3');
    const w = field(ev, 'w')!.split('.').map(Number);
    expect(w).toHaveLength(3);
    for (const x of w) expect(x).toBeGreaterThanOrEqual(6), expect(x).toBeLessThanOrEqual(18);
    expect(field(ev, 'empty')).toBe('1');
    expect(h.sim.ledger.pillsInCup()).toBe(3);
    expect(h.sim.ledger.pillsFellFromSlot(2)).toBe(3);
    expect(h.sim.ledger.cutCount(2)).toBe(1);
    expect(h.sim.ledger.entries[0]).toMatchObject({ commandId: ID(1), slot: 2, label: 'DEMO-003', action: 'release', pillsFell: 3, pulsesReported: 3, pillsLeftInPouch: 0 });
    expect(h.ack(h.cmd(`RELEASE,id=${ID(2)},slot=2,lease=5000,dl=600000`))).toBe('ERR:SLOT_EMPTY');
    h.sim.powerCycle();
    expect(h.ack(h.cmd(`RELEASE,id=${ID(3)},slot=2,lease=5000,dl=600000`))).toBe('ERR:SLOT_EMPTY');
    h.sim.loadPouches([{ slot: 2, label: 'NEW-001', pills: 1 }]);
    expect(h.ack(h.cmd(`RELEASE,id=${ID(4)},slot=2,lease=5000,dl=600000`))).toBe('OK');
    h.sim.takeCup();
    expect(h.sim.ledger.takes).toEqual([{ atMs: h.clock.now(), pills: 3, by: 'citizen' }]);
  });

  it('refuses: CUP without a cup, NOT_OPEN, RANGE, BUSY, ID_REUSED', () => {
    const h = new Host();
    h.ack(h.cmd('SIM,act=take'));
    h.waitEvent('CUP');
    expect(h.distinctEvents('CUP')).toEqual(['CUP,present=0,lifts=1']);
    expect(h.sim.cupPresent).toBe(false);
    expect(h.ack(h.cmd(`RELEASE,id=${ID(1)},slot=2,lease=5000,dl=600000`))).toBe('ERR:CUP');
    h.ack(h.cmd('SIM,act=place'));
    h.waitEvent('CUP', 2);
    expect(h.ack(h.cmd(`SHAKE,id=${ID(2)},slot=2,lease=5000,dl=600000`))).toBe('ERR:NOT_OPEN');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(3)},slot=56,lease=5000,dl=600000`))).toBe('ERR:RANGE');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(4)},slot=20,lease=5000,dl=600000`))).toBe('OK');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(5)},slot=21,lease=5000,dl=600000`))).toBe('BUSY');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(4)},slot=21,lease=5000,dl=600000`))).toBe('ERR:ID_REUSED');
    expect(h.ack(h.cmd(`RELEASE,id=${ID(4)},slot=20,lease=5000,dl=600000`))).toBe('ERR:ID_REUSED');
    expect(h.ack(h.cmd('STATUS'))).toContain('st=busy');
  });

  it('re-acks a known id without moving and re-sends its outcome; QUERY reports none, running, done', () => {
    const h = new Host();
    expect(h.ack(h.cmd(`QUERY,id=${ID(9)}`))).toBe(`OK,id=${ID(9)},st=none`);
    h.ack(h.cmd(`RELEASE,id=${ID(9)},slot=4,lease=5000,dl=600000`));
    expect(h.ack(h.cmd(`QUERY,id=${ID(9)}`))).toBe(`OK,id=${ID(9)},st=running,slot=4`);
    const ev = h.waitEvent('RELEASED');
    const q = h.ack(h.cmd(`QUERY,id=${ID(9)}`));
    expect(q).toBe(`OK,id=${ID(9)},st=done,ev=RELEASED,${ev.slice(ev.indexOf('slot='))}`);
    expect(h.ack(h.cmd(`RELEASE,id=${ID(9)},slot=4,lease=5000,dl=600000`))).toBe('OK');
    h.waitEvent('RELEASED', 2);
    expect(h.distinctEvents('RELEASED')[1]).toBe(ev);
    expect(h.sim.ledger.executions(ID(9))).toBe(1);
    expect(h.sim.ledger.cutCount(4)).toBe(1);
  });

  it('latches on an expired lease, refuses motion until CLEAR; the stopped command is aborted', () => {
    const h = new Host();
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=28,lease=500,dl=600000`));
    h.run(600);
    expect(h.distinctEvents('LATCHED')).toEqual(['LATCHED,reason=LEASE']);
    h.run(5000);
    expect(h.distinctEvents('ROTATED')).toEqual([]);
    expect(h.ack(h.cmd('STATUS'))).toContain('st=latched');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(3)},slot=28,lease=500,dl=600000`))).toBe('ERR:LATCHED');
    expect(h.ack(h.cmd('CLEAR'))).toBe('OK');
    // The stopped command is aborted: QUERY says so and its id never runs again; a new id does.
    expect(h.ack(h.cmd(`QUERY,id=${ID(1)}`))).toBe(`OK,id=${ID(1)},st=aborted,slot=28`);
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=28,lease=500,dl=600000`))).toBe('ERR:ID_REUSED');
    // Host heartbeats every 250 ms keep a 500 ms lease alive through a 2.8 s turn.
    expect(h.ack(h.cmd(`ROTATE,id=${ID(2)},slot=28,lease=500,dl=600000`))).toBe('OK');
    expect(h.waitEvent('ROTATED')).toContain('slot=28');
    expect(h.distinctEvents('LATCHED')).toHaveLength(1);
  });

  it('sets fault rates over FAULT and acts as the citizen over SIM', () => {
    const h = new Host();
    expect(h.ack(h.cmd('FAULT,fault=jam,p=250000'))).toBe('OK');
    expect(h.sim.faults.jam).toBe(0.25);
    expect(h.ack(h.cmd('FAULT,fault=bogus,p=1'))).toBe('ERR:BAD_FIELD');
    expect(h.ack(h.cmd('FAULT,fault=jam,p=2000000'))).toBe('ERR:BAD_FIELD');
    h.ack(h.cmd('SIM,act=press'));
    h.waitEvent('BUTTON');
    expect(h.distinctEvents('BUTTON')).toEqual(['BUTTON']);
    h.sim.pressButton();
    h.waitEvent('BUTTON', 2);
  });

  it('reports a cup lifted and put back within the debounce: the cup present, the count gone up', () => {
    const h = new Host();
    h.sim.takeCup();
    h.clock.advance(10); // back in place before the 50 ms debounce ends
    h.sim.placeCup();
    h.run(1000);
    expect(h.distinctEvents('CUP')).toEqual(['CUP,present=1,lifts=1']);
    // A lift the host heard of is not told again when the cup comes back.
    h.sim.takeCup();
    h.run(1000);
    h.sim.placeCup();
    h.run(1000);
    expect(h.distinctEvents('CUP')).toEqual(['CUP,present=1,lifts=1', 'CUP,present=0,lifts=2', 'CUP,present=1,lifts=2']);
  });

  it('forgets RAM on powerCycle (new boot id, BOOT, latch gone) but keeps its command ids and cup lifts', () => {
    const h = new Host();
    const boot = h.sim.bootId;
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=1,lease=5000,dl=600000`));
    h.waitEvent('ROTATED');
    h.sim.takeCup();
    h.sim.placeCup();
    h.sim.powerCycle();
    expect(h.sim.bootId).not.toBe(boot);
    h.run(100);
    expect(h.distinctEvents('BOOT').at(-1)).toBe(`BOOT,boot=${h.sim.bootId},fw=1.0.0,hw=dosis-r1`);
    expect(h.ack(h.cmd(`QUERY,id=${ID(1)}`))).toBe(`OK,id=${ID(1)},st=done,ev=ROTATED,slot=1,label=DEMO-002`);
    expect(h.ack(h.cmd('STATUS'))).toMatch(/slot=1,.*lifts=1$/);
    // The same id again: answered from memory, the carousel does not move.
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=1,lease=5000,dl=600000`))).toBe('OK');
    expect(h.sim.ledger.executions(ID(1))).toBe(1);
  });

  it('runs nothing but HELLO after a power-up until a HELLO comes: a retransmission to the boot before is refused, not run', () => {
    const h = new Host({ hello: false });
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=4,lease=5000,dl=600000`, 9))).toBe('ERR:HELLO');
    expect(h.ack(h.cmd('STATUS'))).toBe('ERR:HELLO');
    // Not remembered under its seq: after the HELLO the same seq is a new command.
    expect(h.ack(h.hello())).toMatch(/^OK/);
    h.rx.length = 0;
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=4,lease=5000,dl=600000`, 9))).toBe('OK');
    h.waitEvent('ROTATED');
    h.sim.powerCycle();
    h.rx.length = 0;
    // The host's retransmission of a later command, seq 10, reaches the new boot before any HELLO.
    expect(h.ack(h.cmd(`RELEASE,id=${ID(2)},slot=4,lease=5000,dl=600000`, 10))).toBe('ERR:HELLO');
    expect(h.sim.ledger.executions(ID(2))).toBe(0);
    expect(h.sim.ledger.cutCount(4)).toBe(0);
  });

  it('refuses a RELEASE or SHAKE whose pills would leave the pouch after its deadline (ERR:DEADLINE); a ROTATE cuts nothing', () => {
    const h = new Host();
    const cutAtMs = rotationMs(h.profile, 0, 6) + h.profile.cutMs;
    expect(h.ack(h.cmd(`RELEASE,id=${ID(1)},slot=6,lease=5000,dl=${cutAtMs - 1}`))).toBe('ERR:DEADLINE');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(2)},slot=6,lease=5000,dl=1`))).toBe('OK');
    h.waitEvent('ROTATED');
    expect(h.ack(h.cmd(`RELEASE,id=${ID(3)},slot=6,lease=5000,dl=${h.profile.cutMs - 1}`))).toBe('ERR:DEADLINE');
    expect(h.sim.ledger.cutCount(6)).toBe(0);
    expect(h.ack(h.cmd(`RELEASE,id=${ID(4)},slot=6,lease=5000,dl=${h.profile.cutMs}`))).toBe('OK');
    h.waitEvent('RELEASED');
    expect(h.ack(h.cmd(`SHAKE,id=${ID(5)},slot=6,lease=5000,dl=${h.profile.shakeMs - 1}`))).toBe('ERR:DEADLINE');
    expect(h.sim.ledger.cutCount(6)).toBe(1);
  });

  it('cancels all its timers on stop', () => {
    const h = new Host();
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=30,lease=5000,dl=600000`));
    h.sim.stop();
    const n = h.rx.length;
    h.run(10_000);
    expect(h.rx.length).toBe(n);
  });

  it('cancels every timer of its own on a power cycle and on stop, however many came and went before', () => {
    const h = new Host();
    h.autoAck = false;
    h.end.close(); // nothing on the wire: what is left armed is the simulator's own
    const atPowerUp = h.clock.pending;
    // Cup events nobody acks: debounce and retransmit timers by the hundred, the oldest unacked ones cancelled.
    for (let i = 0; i < 200; i++) {
      h.sim.takeCup();
      h.clock.advance(400);
      h.sim.placeCup();
      h.clock.advance(400);
    }
    expect(h.clock.pending).toBeGreaterThan(atPowerUp + 2);
    h.sim.powerCycle();
    expect(h.clock.pending).toBe(atPowerUp);
    h.clock.advance(5000);
    h.sim.stop();
    expect(h.clock.pending).toBe(0);
  });
});

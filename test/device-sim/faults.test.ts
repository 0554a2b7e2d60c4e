// Each simulator fault at rate 1.0 shows its documented effect; the fault spec parser; same seed, same run.
import { describe, it, expect } from 'vitest';
import { encodeFrame, decodeFrame } from '../../protocol/src/frame.js';
import { FAULT_NAMES, parseFaults, type FaultRates } from '../../device-sim/src/faults.js';
import { Host, demoPouches, field } from './harness.js';

const ID = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

function release(h: Host, slot: number, id: number): string {
  expect(h.ack(h.cmd(`RELEASE,id=${ID(id)},slot=${slot},lease=5000,dl=600000`))).toBe('OK');
  return h.waitEvent('RELEASED', h.distinctEvents('RELEASED').length + 1);
}

function shake(h: Host, slot: number, id: number): string {
  expect(h.ack(h.cmd(`SHAKE,id=${ID(id)},slot=${slot},lease=5000,dl=600000`))).toBe('OK');
  return h.waitEvent('SHAKEN', h.distinctEvents('SHAKEN').length + 1);
}

function one(faults: Partial<FaultRates>, pills = 3): Host {
  return new Host({ faults, pouches: demoPouches(56, pills) });
}

describe('parseFaults', () => {
  it('reads name=rate lists and rejects unknown names and bad rates', () => {
    expect(parseFaults('jam=0.01, pillStuck=0.02')).toEqual({ jam: 0.01, pillStuck: 0.02 });
    expect(parseFaults('')).toEqual({});
    expect(() => parseFaults('jamm=0.1')).toThrow(expect.objectContaining({ code: 'DOSIS_ERR_FAULT_SPEC' }));
    expect(() => parseFaults('jam=2')).toThrow(/from 0 to 1/);
    expect(() => parseFaults('jam')).toThrow(/name=rate/);
    expect(FAULT_NAMES).toHaveLength(15);
  });
});

describe('faults at rate 1.0', () => {
  it('pillStuck: one pill stays until a SHAKE frees it', () => {
    const h = one({ pillStuck: 1 });
    const r = release(h, 1, 1);
    expect([field(r, 'n'), field(r, 'empty')]).toEqual(['2', '0']);
    const s = shake(h, 1, 2);
    expect([field(s, 'n'), field(s, 'empty')]).toEqual(['1', '1']);
    expect(h.sim.ledger.pillsFellFromSlot(1)).toBe(3);
  });

  it('pillsStuckForGood: one pill never falls, empty reads 0 even after a shake', () => {
    const h = one({ pillsStuckForGood: 1 });
    expect(field(release(h, 1, 1), 'empty')).toBe('0');
    const s = shake(h, 1, 2);
    expect([field(s, 'n'), field(s, 'empty')]).toEqual(['0', '0']);
    expect(h.sim.ledger.pillsFellFromSlot(1)).toBe(2);
    expect(h.sim.ledger.entries.at(-1)!.pillsLeftInPouch).toBe(1);
  });

  it('overlap: two pills pass as one long pulse', () => {
    const h = one({ overlap: 1 }, 2);
    const r = release(h, 0, 1);
    expect(field(r, 'n')).toBe('1');
    expect(Number(field(r, 'w'))).toBeGreaterThan(h.profile.pillPulseMs.max);
    expect(h.sim.ledger.pillsInCup()).toBe(2);
  });

  it('ghostPulse: an extra 1–4 ms pulse with no pill', () => {
    const h = one({ ghostPulse: 1 }, 0);
    const r = release(h, 0, 1);
    expect(field(r, 'n')).toBe('1');
    expect(Number(field(r, 'w'))).toBeLessThanOrEqual(4);
    expect(h.sim.ledger.pillsInCup()).toBe(0);
  });

  it('missedPulse: pills fall, no pulse', () => {
    const h = one({ missedPulse: 1 });
    const r = release(h, 0, 1);
    expect([field(r, 'n'), field(r, 'empty')]).toEqual(['0', '1']);
    expect(h.sim.ledger.pillsInCup()).toBe(3);
  });

  it('jam: ROTATED err=JAM and latched until CLEAR', () => {
    const h = one({ jam: 1 });
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`));
    expect(h.waitEvent('ROTATED')).toBe(`ROTATED,id=${ID(1)},slot=0,err=JAM`);
    h.waitEvent('LATCHED');
    expect(h.distinctEvents('LATCHED')).toEqual(['LATCHED,reason=JAM']);
    expect(h.ack(h.cmd(`ROTATE,id=${ID(2)},slot=5,lease=5000,dl=600000`))).toBe('ERR:LATCHED');
    expect(h.ack(h.cmd('CLEAR'))).toBe('OK');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(2)},slot=5,lease=5000,dl=600000`))).toBe('OK');
  });

  it('slip: the index reports the slot, the label shows the neighbour', () => {
    const h = one({ slip: 1 });
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`));
    const ev = h.waitEvent('ROTATED');
    expect(field(ev, 'slot')).toBe('5');
    expect(['DEMO-005', 'DEMO-007']).toContain(field(ev, 'label'));
    expect(h.sim.status().physicalSlot).not.toBe(5);
    // Releasing now cuts the neighbour: the ledger tells the truth.
    const r = release(h, 5, 2);
    expect(field(r, 'slot')).toBe('5');
    expect(h.sim.ledger.cutCount(5)).toBe(0);
    expect(h.sim.ledger.cutCount(h.sim.status().physicalSlot)).toBe(1);
  });

  it('labelUnreadable: ROTATED err=LABEL', () => {
    const h = one({ labelUnreadable: 1 });
    h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`));
    expect(h.waitEvent('ROTATED')).toBe(`ROTATED,id=${ID(1)},slot=5,err=LABEL`);
  });

  it('corruptByte: nothing it sends decodes, nothing it receives executes', () => {
    const h = one({ corruptByte: 1 });
    h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`);
    h.run(3000);
    expect(h.rx.length).toBeGreaterThan(0);
    expect(h.rx.every((r) => !decodeFrame(r.raw).ok)).toBe(true);
    expect(h.sim.ledger.executions(ID(1))).toBe(0);
  });

  it('dropLine: silence both ways', () => {
    const h = one({ dropLine: 1 });
    h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`);
    h.run(3000);
    expect(h.rx).toEqual([]);
    expect(h.sim.ledger.executions(ID(1))).toBe(0);
  });

  it('duplicateLine: every line twice, a command still executes once', () => {
    const h = one({ duplicateLine: 1 });
    const s = h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`);
    h.run(50);
    expect(h.acks(s)).toEqual(['OK', 'OK', 'OK', 'OK']);
    expect(h.sim.ledger.executions(ID(1))).toBe(0 + 1);
    const hb = h.rx.filter((r) => r.frame?.kind === 'H');
    h.run(1000);
    expect(h.rx.filter((r) => r.frame?.kind === 'H').length - hb.length).toBe(2);
  });

  it('mcuReset: resets during the motion, new boot id, BOOT; the id is kept as aborted and never runs again; the cut map survives', () => {
    const h = one({ mcuReset: 1 });
    const boot = h.sim.bootId;
    h.ack(h.cmd(`RELEASE,id=${ID(1)},slot=3,lease=5000,dl=600000`));
    h.run(3000);
    expect(h.sim.bootId).not.toBe(boot);
    expect(h.distinctEvents('BOOT')).toHaveLength(2);
    expect(h.distinctEvents('RELEASED')).toEqual([]);
    expect(h.ack(h.cmd(`QUERY,id=${ID(1)}`))).toBe(`OK,id=${ID(1)},st=aborted,slot=3`);
    expect(h.ack(h.cmd(`RELEASE,id=${ID(1)},slot=3,lease=5000,dl=600000`))).toBe('ERR:ID_REUSED');
    expect(h.sim.ledger.executions(ID(1))).toBe(1);
    const cut = h.sim.ledger.cutCount(3) === 1;
    expect(h.ack(h.cmd(`RELEASE,id=${ID(2)},slot=3,lease=5000,dl=600000`))).toBe(cut ? 'ERR:SLOT_EMPTY' : 'OK');
  });

  it('driverFault: the motion is refused ERR:LATCHED with LATCHED reason=FAULT, nothing moves; CLEAR clears it', () => {
    const h = one({ driverFault: 1 });
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`))).toBe('ERR:LATCHED');
    h.waitEvent('LATCHED');
    expect(h.distinctEvents('LATCHED')).toEqual(['LATCHED,reason=FAULT']);
    expect(h.sim.status().physicalSlot).toBe(0);
    expect(h.ack(h.cmd(`QUERY,id=${ID(1)}`))).toBe(`OK,id=${ID(1)},st=none`);
    expect(h.sim.fired.driverFault).toBe(1);
    h.sim.setFault('driverFault', 0);
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`))).toBe('ERR:LATCHED');
    expect(h.ack(h.cmd('CLEAR'))).toBe('OK');
    expect(h.ack(h.cmd(`ROTATE,id=${ID(1)},slot=5,lease=5000,dl=600000`))).toBe('OK');
  });

  it('counts each fault that fires, and only those', () => {
    const h = one({ pillStuck: 1, ghostPulse: 1 });
    release(h, 1, 1);
    release(h, 2, 2);
    expect(h.sim.fired.pillStuck).toBe(2);
    expect(h.sim.fired.ghostPulse).toBe(2);
    expect(Object.entries(h.sim.fired).filter(([k, n]) => n > 0 && k !== 'pillStuck' && k !== 'ghostPulse')).toEqual([]);
  });

  it('notAnswering: silent for 5 s, then answers again', () => {
    const h = one({ notAnswering: 1 });
    const s = h.hello();
    h.run(4900);
    expect(h.rx.filter((r) => r.atMs > h.clock.now() - 4800)).toEqual([]);
    expect(h.acks(s)).toEqual([]);
    h.sim.setFault('notAnswering', 0);
    h.run(200);
    expect(h.ack(h.hello())).toMatch(/^OK/);
  });
});

describe('determinism', () => {
  function scenario(seed: number): { ledger: unknown; wire: string[] } {
    const h = new Host({ seed, faults: { pillStuck: 0.3, overlap: 0.2, ghostPulse: 0.2, missedPulse: 0.1, slip: 0.2, duplicateLine: 0.05 }, pouches: demoPouches(56, 5) });
    for (let i = 0; i < 6; i++) {
      h.cmd(`ROTATE,id=${ID(100 + i)},slot=${i},lease=5000,dl=600000`);
      h.waitEvent('ROTATED', i + 1);
      h.cmd(`RELEASE,id=${ID(200 + i)},slot=${i},lease=5000,dl=600000`);
      h.waitEvent('RELEASED', i + 1);
    }
    return { ledger: h.sim.ledger.entries.map((e) => ({ ...e })), wire: h.rx.map((r) => `${r.atMs} ${r.raw}`) };
  }

  it('same seed and inputs give the same ledger and the same bytes on the wire', () => {
    const a = scenario(7);
    const b = scenario(7);
    expect(a).toEqual(b);
    expect((a.ledger as unknown[]).length).toBe(6);
    const c = scenario(8);
    expect(c.wire).not.toEqual(a.wire);
  });

  it('a host frame that is not a frame still gets no exception out of the simulator', () => {
    const h = one({});
    for (const junk of ['$', '$C,1,*0000', `${encodeFrame({ kind: 'C', seq: 1, body: 'FAULT,fault=FAULT,p=1' })}`, '\u00ff\u00fe\n', '$C,999,X*1234']) h.raw(junk.endsWith('\n') ? junk : `${junk}\n`);
    h.run(200);
    expect(h.acks(1)).toEqual(['ERR:BAD_FIELD']);
  });
});

describe('a world watching the MCU (aimed events)', () => {
  it('sees each command and motion, and can reset the MCU as a line arrives, make it deaf, trip its driver or stick a pill', () => {
    const h = one({}, 3);
    const seen: string[] = [];
    const motions: string[] = [];
    let next: 'reset' | 'trip' | 'deaf' | 'stick' | undefined;
    h.sim.watch = {
      command: (c) => {
        if (c.name === 'HELLO') return undefined;
        seen.push(c.name);
        const n = next;
        next = undefined;
        return n;
      },
      motion: (m) => motions.push(`${m.name} ${m.slot} ${m.cutAtMs === undefined ? '-' : 'cut'}`),
    };
    // A pill stuck on purpose: the release counts one short, a shake frees it.
    next = 'stick';
    expect(field(release(h, 1, 1), 'n')).toBe('2');
    expect(motions).toEqual(['RELEASE 1 cut']);
    // The driver trips on this rotation only.
    next = 'trip';
    expect(h.ack(h.cmd(`ROTATE,id=${ID(2)},slot=4,lease=5000,dl=600000`))).toBe('ERR:LATCHED');
    expect(h.ack(h.cmd('CLEAR'))).toBe('OK');
    // Deaf: the line is not answered; 5 s later it answers again.
    next = 'deaf';
    const s = h.cmd('STATUS');
    h.run(4000);
    expect(h.acks(s)).toEqual([]);
    h.run(1100);
    expect(h.ack(h.cmd('STATUS'))).toMatch(/^OK/);
    // A reset as the line arrives: the CLEAR never runs, a new boot id, BOOT sent.
    const boot = h.sim.bootId;
    next = 'reset';
    const c = h.cmd('CLEAR');
    h.run(100);
    expect(h.acks(c)).toEqual([]);
    expect(h.sim.bootId).not.toBe(boot);
    expect(seen).toEqual(['RELEASE', 'ROTATE', 'CLEAR', 'STATUS', 'STATUS', 'CLEAR']);
  });
});

// The host link against the real simulator over the in-memory wire: round trips, faults, resets, silence, re-plug.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../protocol/src/frame.js';
import { CATALOGUE_HASH } from '../../../protocol/src/catalogue.js';
import { LinkRig, commandId } from './rig.js';

let rig: LinkRig | undefined;
afterEach(() => {
  rig?.stop();
  rig = undefined;
});

describe('DeviceLink in memory', () => {
  it('says hello and reports the MCU it found', () => {
    rig = new LinkRig().start();
    expect(rig.link.hello).toMatchObject({ cat: CATALOGUE_HASH, hw: 'dosis-r1', boot: rig.sim.bootId });
  });

  it('hands up every MCU heartbeat, each with the state the MCU sent in it', () => {
    rig = new LinkRig().start();
    const seen: string[] = [];
    rig.link.on('heartbeat', (hb) => seen.push(`${hb.st} cup=${hb.cup}`));
    rig.clock.advance(3 * rig.profile.heartbeatMs);
    rig.sim.takeCup();
    rig.clock.advance(3 * rig.profile.heartbeatMs);
    rig.sim.placeCup();
    rig.clock.advance(2 * rig.profile.heartbeatMs);
    expect(seen).toEqual(['idle cup=1', 'idle cup=1', 'idle cup=1', 'idle cup=0', 'idle cup=0', 'idle cup=0', 'idle cup=1', 'idle cup=1']);
  });

  it('carries the new boot id in the heartbeats after an MCU reset', () => {
    rig = new LinkRig().start();
    const boots: string[] = [];
    rig.link.on('heartbeat', (hb) => boots.push(hb.boot));
    rig.clock.advance(2 * rig.profile.heartbeatMs);
    const before = rig.sim.bootId;
    rig.sim.powerCycle();
    rig.clock.advance(5 * rig.profile.heartbeatMs);
    expect(rig.sim.bootId).not.toBe(before);
    expect(boots.slice(0, 2)).toEqual([before, before]);
    expect(boots.at(-1)).toBe(rig.sim.bootId);
    const after = rig.sim.bootId;
    expect(boots.filter((b) => b !== before && b !== after)).toEqual([]);
  });

  it('refuses to send before the link is ready, at once and without throwing', () => {
    rig = new LinkRig();
    let code: string | undefined;
    rig.link.send({ name: 'STATUS' }, (r) => (code = r.ok ? 'ok' : r.error.code));
    expect(code).toBe('DOSIS_ERR_LINK_NOT_READY');
  });

  it('round-trips every command and hands up every event once', () => {
    rig = new LinkRig({ pills: 4 }).start();
    const status = rig.send({ name: 'STATUS' });
    expect(status.ok && status.ack.result === 'OK' && status.ack.fields).toMatchObject({ st: 'idle', cup: 1, boot: rig.sim.bootId });
    const lease = rig.profile.leaseMs;

    expect(rig.send({ name: 'ROTATE', id: commandId(1), slot: 5, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.waitEvent((e) => e.name === 'ROTATED')).toMatchObject({ id: commandId(1), slot: 5, label: 'T-006' });

    expect(rig.send({ name: 'RELEASE', id: commandId(2), slot: 5, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.waitEvent((e) => e.name === 'RELEASED')).toMatchObject({ id: commandId(2), slot: 5, n: 4, empty: 1 });

    expect(rig.send({ name: 'SHAKE', id: commandId(3), slot: 5, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.waitEvent((e) => e.name === 'SHAKEN')).toMatchObject({ id: commandId(3), n: 0 });

    const q = rig.send({ name: 'QUERY', id: commandId(2) });
    expect(q.ok && q.ack.result === 'OK' && q.ack.fields).toMatchObject({ st: 'done', ev: 'RELEASED', n: 4 });
    expect(rig.send({ name: 'SIGNAL', mode: 'present' })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.send({ name: 'CLEAR' })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.send({ name: 'FAULT', fault: 'jam', p: 0 })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    expect(rig.send({ name: 'FAULT', fault: 'wobble', p: 0 })).toMatchObject({ ok: true, ack: { result: 'ERR:BAD_FIELD' } });

    const before = rig.events.length;
    expect(rig.send({ name: 'SIM', act: 'take' })).toMatchObject({ ok: true });
    expect(rig.waitEvent((e) => e.name === 'CUP', before)).toMatchObject({ present: 0 });
    rig.sim.pressButton();
    rig.waitEvent((e) => e.name === 'BUTTON', before);
    rig.clock.advance(5000);
    const names = rig.events.map((e) => e.name);
    expect(names.filter((n) => n === 'RELEASED')).toHaveLength(1);
    expect(names.filter((n) => n === 'BUTTON')).toHaveLength(1);
    // The MCU refuses what it must refuse, and the link passes the refusal up as an ack.
    expect(rig.send({ name: 'RELEASE', id: commandId(4), slot: 5, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'ERR:SLOT_EMPTY' } });
  });

  it('executes every command exactly once on a wire that corrupts, drops and duplicates', () => {
    rig = new LinkRig({ seed: 42, faults: { corruptByte: 0.001, dropLine: 0.01, duplicateLine: 0.01 } }).start();
    const lease = rig.profile.leaseMs;
    const ids: string[] = [];
    let retries = 0;
    // 200 rotations and a release of every pouch, each command retried by id until acknowledged.
    const plan = [
      ...Array.from({ length: 200 }, (_, i) => ({ name: 'ROTATE' as const, slot: (i * 7) % rig!.profile.slotCount })),
      ...Array.from({ length: rig.profile.slotCount }, (_, slot) => ({ name: 'RELEASE' as const, slot })),
    ];
    plan.forEach((step, i) => {
      const id = commandId(1000 + i);
      ids.push(id);
      for (;;) {
        if (rig!.link.state !== 'ready') rig!.clock.runUntil(() => rig!.link.state === 'ready', 30_000);
        if (step.name === 'RELEASE') {
          rig!.send({ name: 'ROTATE', id: commandId(5000 + i), slot: step.slot, lease, dl: 60_000 });
          rig!.waitEvent((e) => e.name === 'ROTATED' && e.id === commandId(5000 + i));
        }
        const r = rig!.send({ name: step.name, id, slot: step.slot, lease, dl: 60_000 });
        if (r.ok && r.ack.result === 'OK') break;
        retries++;
      }
      const want = step.name === 'ROTATE' ? 'ROTATED' : 'RELEASED';
      rig!.waitEvent((e) => e.name === want && 'id' in e && e.id === id);
    });
    rig.clock.advance(10_000);
    for (const id of ids) expect(rig.sim.ledger.executions(id), id).toBe(1);
    for (let slot = 0; slot < rig.profile.slotCount; slot++) expect(rig.sim.ledger.cutCount(slot)).toBe(1);
    // Every outcome handed up exactly once, whatever the wire repeated.
    const outcomeIds = rig.events.flatMap((e) => (e.name === 'ROTATED' || e.name === 'RELEASED' ? [e.id] : []));
    expect(new Set(outcomeIds).size).toBe(outcomeIds.length);
    expect(rig.link.stats.retransmits + rig.link.stats.duplicates + rig.link.stats.naksIn).toBeGreaterThan(0);
    expect(retries).toBeLessThan(ids.length);
  });

  it('reports an MCU reset in the middle of a release; the MCU then knows the command as aborted', () => {
    rig = new LinkRig().start();
    const resets: { previousBootId: string; bootId: string }[] = [];
    rig.link.on('mcuReset', (r) => resets.push(r));
    const oldBoot = rig.sim.bootId;
    const lease = rig.profile.leaseMs;
    rig.send({ name: 'ROTATE', id: commandId(1), slot: 2, lease, dl: 60_000 });
    rig.waitEvent((e) => e.name === 'ROTATED');
    expect(rig.send({ name: 'RELEASE', id: commandId(2), slot: 2, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'OK' } });
    rig.clock.advance(rig.profile.cutMs + 50);
    rig.sim.powerCycle();
    rig.clock.runUntil(() => resets.length > 0 && rig!.link.state === 'ready', 10_000);
    expect(resets).toEqual([{ previousBootId: oldBoot, bootId: rig.sim.bootId }]);
    expect(rig.link.hello?.boot).toBe(rig.sim.bootId);
    const q = rig.send({ name: 'QUERY', id: commandId(2) });
    expect(q.ok && q.ack.result === 'OK' && q.ack.fields.st).toBe('aborted');
    expect(rig.events.some((e) => e.name === 'RELEASED')).toBe(false);
    // The same id is never run again.
    expect(rig.send({ name: 'RELEASE', id: commandId(2), slot: 2, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'ERR:ID_REUSED' } });
    // The pouch was cut before the reset: the non-volatile cut map refuses a second cut.
    expect(rig.send({ name: 'RELEASE', id: commandId(3), slot: 2, lease, dl: 60_000 })).toMatchObject({ ok: true, ack: { result: 'ERR:SLOT_EMPTY' } });
  });

  it('never retransmits a command across a reset: the new boot refuses it (ERR:HELLO), the link fails it and says hello', () => {
    // The ack of a ROTATE is lost on the wire and the MCU resets before the host hears of it: the retransmission
    // (same seq) reaches the fresh MCU, whose duplicate window is gone.
    rig = new LinkRig().start();
    const lease = rig.profile.leaseMs;
    const oldBoot = rig.sim.bootId;
    let result: string | undefined;
    // The MCU's OK acks, BOOT events and heartbeats are lost until the link has given up the command.
    const dev = rig.ends[1];
    const write = dev.write.bind(dev);
    dev.write = (line: string) => {
      if (result === undefined && (/^\$A,\d+,OK/.test(line) || line.includes('BOOT') || line.startsWith('$H'))) return;
      write(line);
    };
    rig.link.send({ name: 'ROTATE', id: commandId(7), slot: 3, lease, dl: 60_000 }, (r) => (result = r.ok ? r.ack.result : r.error.code));
    rig.clock.advance(10);
    expect(rig.sim.ledger.executions(commandId(7))).toBe(1);
    rig.sim.powerCycle();
    rig.clock.runUntil(() => result !== undefined, 10_000);
    expect(rig.link.stats.retransmits).toBeGreaterThan(0);
    expect(result).toBe('DOSIS_ERR_MCU_RESET');
    rig.clock.runUntil(() => rig!.link.state === 'ready' && rig!.link.hello?.boot !== oldBoot, 10_000);
    expect(rig.link.hello?.boot).toBe(rig.sim.bootId);
    expect(rig.sim.ledger.executions(commandId(7))).toBe(1);
    const q = rig.send({ name: 'QUERY', id: commandId(7) });
    expect(q.ok && q.ack.result === 'OK' && q.ack.fields.st).toBe('aborted');
  });

  it('sends a motion\'s deadline afresh at every transmission and never transmits it once the deadline has passed', () => {
    rig = new LinkRig().start();
    const lease = rig.profile.leaseMs;
    const sent: string[] = [];
    rig.ends[0].onLine(() => undefined);
    const write = rig.ends[0].write.bind(rig.ends[0]);
    rig.ends[0].write = (line: string) => {
      if (line.includes('RELEASE')) sent.push(line);
      write(line);
    };
    rig.send({ name: 'ROTATE', id: commandId(1), slot: 4, lease, dl: 60_000 });
    rig.waitEvent((e) => e.name === 'ROTATED');
    // The MCU hears nothing for a while: the link retransmits with less time left each time, then gives up at the deadline.
    rig.sim.setFault('dropLine', 1);
    const deadlineAtMs = rig.clock.now() + 1500;
    let result: string | undefined;
    rig.link.send({ name: 'RELEASE', id: commandId(2), slot: 4, lease, dl: 0 }, (r) => (result = r.ok ? r.ack.result : r.error.code), { deadlineAtMs });
    rig.clock.runUntil(() => result !== undefined, 10_000);
    expect(result).toBe('DOSIS_ERR_DEADLINE');
    const dls = sent.map((l) => Number(/dl=(\d+)/.exec(l)![1]));
    expect(dls.length).toBeGreaterThan(2);
    for (let i = 1; i < dls.length; i++) expect(dls[i]).toBeLessThan(dls[i - 1]!);
    expect(Math.min(...dls)).toBeGreaterThan(0);
    expect(rig.clock.now()).toBeGreaterThanOrEqual(deadlineAtMs);
    expect(rig.sim.ledger.cutCount(4)).toBe(0);
  });

  it('fails a command outstanding at a reset with DOSIS_ERR_MCU_RESET', () => {
    rig = new LinkRig().start();
    let code: string | undefined;
    rig.link.send({ name: 'STATUS' }, (r) => (code = r.ok ? 'ok' : r.error.code));
    rig.sim.powerCycle(); // before the command reached it: the BOOT event comes instead of an ack
    rig.clock.runUntil(() => code !== undefined, 10_000);
    expect(code === 'DOSIS_ERR_MCU_RESET' || code === 'ok').toBe(true);
    rig.clock.runUntil(() => rig!.link.state === 'ready', 10_000);
    expect(rig.link.stats.resets).toBe(1);
  });

  it('rejects garbage and over-long lines on both sides without crashing, and stays ready', () => {
    rig = new LinkRig().start();
    const [host, dev] = rig.ends;
    for (const junk of ['hello world', '$$$$', '$E,1,BUTTON*0000', 'x'.repeat(500), '$E,999,BUTTON*1234', '\u00ff\u0001garbage']) {
      dev.write(`${junk}\n`); // towards the host
      host.write(`${junk}\n`); // towards the MCU
      rig.clock.advance(30);
    }
    dev.write(`${encodeFrame({ kind: 'E', seq: 77, body: 'NOSUCH,x=1' })}`);
    rig.clock.advance(1000);
    expect(rig.link.state).toBe('ready');
    const rejected = Object.values(rig.link.stats.rejected).reduce((a, b) => a + (b ?? 0), 0);
    expect(rejected).toBeGreaterThanOrEqual(5);
    expect(rig.link.stats.naksOut).toBeGreaterThan(0);
    expect(rig.link.stats.naksIn).toBeGreaterThan(0);
    expect(rig.link.stats.badBodies).toBe(1);
    expect(rig.send({ name: 'STATUS' })).toMatchObject({ ok: true, ack: { result: 'OK' } });
  });

  it('declares the link lost when the MCU falls silent, and recovers when it answers again', () => {
    rig = new LinkRig().start();
    const lost: string[] = [];
    rig.link.on('lost', (r) => lost.push(r));
    rig.sim.setFault('notAnswering', 1);
    rig.link.send({ name: 'STATUS' }, () => undefined);
    rig.clock.runUntil(() => rig!.link.state === 'lost', 10_000);
    expect(lost).toHaveLength(1);
    rig.sim.setFault('notAnswering', 0);
    rig.clock.runUntil(() => rig!.link.state === 'ready', 20_000);
    expect(rig.link.state).toBe('ready');
    expect(rig.send({ name: 'STATUS' })).toMatchObject({ ok: true });
  });

  it('reconnects by opening the port again after an unplug', () => {
    rig = new LinkRig().start();
    let failed: string | undefined;
    rig.link.send({ name: 'ROTATE', id: commandId(9), slot: 1, lease: 5000, dl: 60_000 }, (r) => (failed = r.ok ? undefined : r.error.code));
    rig.ends[0].close('unplugged');
    expect(rig.link.state).toBe('lost');
    expect(failed).toBe('DOSIS_ERR_LINK_LOST');
    rig.clock.runUntil(() => rig!.link.state === 'ready', 10_000);
    expect(rig.opens).toBe(2);
    expect(rig.link.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(rig.send({ name: 'STATUS' })).toMatchObject({ ok: true, ack: { result: 'OK' } });
  });

  it('gives the same frames for the same seed', () => {
    const run = () => {
      const r = new LinkRig({ seed: 9, faults: { corruptByte: 0.002, dropLine: 0.02 } }).start();
      for (let i = 0; i < 20; i++) r.send({ name: 'ROTATE', id: commandId(i), slot: i, lease: 5000, dl: 60_000 });
      r.clock.advance(5000);
      const s = { ...r.link.stats, events: r.events.length };
      r.stop();
      return s;
    };
    expect(run()).toEqual(run());
  });
});

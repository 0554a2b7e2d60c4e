// protocol/vectors.json, checked against the decoders and against both ends: the simulator (MCU side) and the host link.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as p from '../../protocol/src/index.js';
import { LinkRig } from '../firmware-host/link/rig.js';

type Vectors = {
  protocolVersion: number;
  catalogueHash: string;
  crcCheck: { input: string; crc: string };
  valid: { frame: string; kind: p.FrameKind; seq: number; body: string; decoded: Record<string, unknown>; note: string }[];
  rejectedFrames: { line: string; reason: p.FrameRejection; note: string }[];
  rejectedBodies: { frame: string; reason: p.BodyRejection; ack: string; note: string }[];
};
const V = JSON.parse(readFileSync(new URL('../../protocol/vectors.json', import.meta.url), 'utf8')) as Vectors;

describe('protocol vectors: decoders', () => {
  it('belong to this protocol version and catalogue', () => {
    expect(V.protocolVersion).toBe(p.PROTOCOL_VERSION);
    expect(V.catalogueHash).toBe(p.CATALOGUE_HASH);
    expect(p.crc16Hex(V.crcCheck.input)).toBe(V.crcCheck.crc);
  });

  it.each(V.valid.map((v) => [v.note, v] as const))('decodes and re-encodes: %s', (_note, v) => {
    const d = p.decodeFrame(`${v.frame}\n`);
    expect(d).toMatchObject({ ok: true, frame: { kind: v.kind, seq: v.seq, body: v.body } });
    expect(p.encodeFrame({ kind: v.kind, seq: v.seq, body: v.body })).toBe(`${v.frame}\n`);
    const x = v.decoded;
    if (v.kind === 'C') expect(p.decodeCommand(v.body)).toEqual({ ok: true, value: x });
    else if (v.kind === 'E') expect(p.decodeEvent(v.body)).toEqual({ ok: true, value: x });
    else if (v.kind === 'A') expect(p.decodeAck(x.ack as p.CommandName, v.body)).toEqual({ ok: true, value: { result: x.result, fields: x.fields } });
    else if (v.kind === 'H') expect(p.decodeHeartbeat(x.heartbeat as 'host' | 'mcu', v.body)).toEqual({ ok: true, value: x.fields });
    else expect(v.body).toBe(x.nak);
  });

  it.each(V.rejectedFrames.map((v) => [v.note, v] as const))('rejects a bad frame: %s', (_note, v) => {
    expect(p.decodeFrame(`${v.line}\n`)).toMatchObject({ ok: false, reason: v.reason });
  });

  it.each(V.rejectedBodies.map((v) => [v.note, v] as const))('refuses a bad body: %s', (_note, v) => {
    const d = p.decodeFrame(v.frame);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const r = d.frame.kind === 'C' ? p.decodeCommand(d.frame.body) : p.decodeEvent(d.frame.body);
    expect(r).toMatchObject({ ok: false, reason: v.reason });
  });
});

describe('protocol vectors: both ends', () => {
  it('the simulator naks every rejected frame and answers every bad command with the vector\'s ack', () => {
    const rig = new LinkRig().start();
    const [host] = rig.ends;
    const seen: string[] = [];
    // Listen on the host's end of the wire, beside the link.
    host.onLine((l) => seen.push(l));
    for (const v of V.rejectedFrames) {
      seen.length = 0;
      host.write(`${v.line}\n`);
      rig.clock.advance(50);
      const naks = seen.map((l) => p.decodeFrame(l)).filter((d) => d.ok && d.frame.kind === 'N');
      expect(naks.map((d) => d.ok && d.frame.body), v.note).toContain(v.reason);
    }
    for (const v of V.rejectedBodies.filter((b) => b.frame.startsWith('$C'))) {
      seen.length = 0;
      host.write(`${v.frame}\n`);
      rig.clock.advance(50);
      const seq = (p.decodeFrame(v.frame) as { frame: p.Frame }).frame.seq;
      const acks = seen.map((l) => p.decodeFrame(l)).filter((d) => d.ok && d.frame.kind === 'A' && d.frame.seq === seq);
      expect(acks.map((d) => d.ok && d.frame.body), v.note).toContain(v.ack);
    }
    expect(rig.link.state).toBe('ready');
    rig.stop();
  });

  it('the host link rejects every bad frame with its reason and refuses every bad event', () => {
    const rig = new LinkRig().start();
    const [, dev] = rig.ends;
    for (const v of V.rejectedFrames) {
      const before = rig.link.stats.rejected[v.reason] ?? 0;
      dev.write(`${v.line}\n`);
      rig.clock.advance(50);
      expect(rig.link.stats.rejected[v.reason], v.note).toBe(before + 1);
    }
    const events = rig.events.length;
    const bad = V.rejectedBodies.filter((b) => b.frame.startsWith('$E'));
    for (const v of bad) dev.write(`${v.frame}\n`);
    rig.clock.advance(100);
    expect(rig.link.stats.badBodies).toBe(bad.length);
    expect(rig.events.length).toBe(events);
    expect(rig.link.state).toBe('ready');
    rig.stop();
  });
});

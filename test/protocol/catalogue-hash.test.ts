// The catalogue hash covers what an MCU implements and nothing of the simulator's debug channel.
import { describe, expect, it } from 'vitest';
import { ACK_ERRORS, CATALOGUE_HASH, COMMANDS, EVENTS, HEARTBEATS, PROTOCOL_VERSION, catalogueHash, type CommandDef } from '../../protocol/src/catalogue.js';

const base = { v: PROTOCOL_VERSION, COMMANDS: COMMANDS as Record<string, CommandDef>, EVENTS, HEARTBEATS, ACK_ERRORS };
const extra = (debug: boolean): CommandDef => ({
  fields: COMMANDS.SIGNAL.fields,
  ack: COMMANDS.SIGNAL.ack,
  motion: false,
  ...(debug ? { debug: true as const } : {}),
  doc: 'a new command',
});

describe('catalogue hash', () => {
  it('is the hash of the catalogue as shipped', () => {
    expect(catalogueHash(base)).toBe(CATALOGUE_HASH);
    expect(CATALOGUE_HASH).toMatch(/^[0-9A-F]{8}$/);
  });

  it('leaves out the debug commands: FAULT and SIM are marked, removing them changes nothing', () => {
    const debug = Object.entries(COMMANDS).filter(([, d]) => 'debug' in d && d.debug).map(([n]) => n);
    expect(debug.sort()).toEqual(['FAULT', 'SIM']);
    const { FAULT: _f, SIM: _s, ...real } = COMMANDS;
    expect(catalogueHash({ ...base, COMMANDS: real })).toBe(CATALOGUE_HASH);
  });

  it('does not change when a debug command is added or changed', () => {
    expect(catalogueHash({ ...base, COMMANDS: { ...COMMANDS, PEEK: extra(true) } })).toBe(CATALOGUE_HASH);
    const fault = { ...COMMANDS.FAULT, doc: 'reworded' };
    expect(catalogueHash({ ...base, COMMANDS: { ...COMMANDS, FAULT: fault } })).toBe(CATALOGUE_HASH);
  });

  it('changes when a real command is added, or a debug one becomes real', () => {
    expect(catalogueHash({ ...base, COMMANDS: { ...COMMANDS, PEEK: extra(false) } })).not.toBe(CATALOGUE_HASH);
    const { debug: _d, ...realSim } = COMMANDS.SIM;
    expect(catalogueHash({ ...base, COMMANDS: { ...COMMANDS, SIM: realSim } })).not.toBe(CATALOGUE_HASH);
  });

  it('changes with a real command\'s fields, an event, an ack code or the protocol version', () => {
    const signal = { ...COMMANDS.SIGNAL, doc: 'buzzer, light and vibration' };
    expect(catalogueHash({ ...base, COMMANDS: { ...COMMANDS, SIGNAL: signal } })).not.toBe(CATALOGUE_HASH);
    expect(catalogueHash({ ...base, EVENTS: { ...EVENTS, DOOR: EVENTS.CUP } })).not.toBe(CATALOGUE_HASH);
    expect(catalogueHash({ ...base, ACK_ERRORS: [...ACK_ERRORS, 'DOOR'] })).not.toBe(CATALOGUE_HASH);
    expect(catalogueHash({ ...base, v: PROTOCOL_VERSION + 1 })).not.toBe(CATALOGUE_HASH);
  });
});

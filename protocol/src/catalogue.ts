// The message catalogue: every body the host and the MCU exchange, with a TypeBox schema per message.
//
// A body is `NAME` followed by `,key=value` fields (commands, events, heartbeats),
// or `RESULT` followed by fields (acks), or a rejection code (naks). protocol/README.md
// documents each message for an MCU implementer; this file is the source of truth.

import { createHash } from 'node:crypto';
import { Type, type Static, type TLiteral, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

export const PROTOCOL_VERSION = 1;
/** At most this many pulse widths travel in one result; `n` still counts every pulse. */
export const MAX_WIDTHS = 16;

// ---------------------------------------------------------------- field types
// Each field schema carries a `codec` telling how its text on the wire becomes a value.

type Codec = 'int' | 'text' | 'list';
const int = (minimum: number, maximum: number, description: string) =>
  Type.Integer({ minimum, maximum, description, codec: 'int' as Codec });
const text = (pattern: string, maxLength: number, description: string) =>
  Type.String({ pattern, maxLength, description, codec: 'text' as Codec });
const oneOf = <const T extends readonly string[]>(values: T, description: string) =>
  Type.Union(values.map((v) => Type.Literal(v)) as unknown as TLiteral<T[number]>[], { description, codec: 'text' as Codec });

const hex8 = (description: string) => text('^[0-9A-F]{8}$', 8, description);
const commandId = hex8('host-generated command id, stored by the host before the command is sent');
const bootId = hex8('random id the MCU draws at every power-up; a new one means the MCU reset');
const slot = int(0, 255, 'carousel slot, 0-based');
const leaseMs = int(100, 60_000, 'ms: with no valid host frame within this, the MCU stops and latches safe');
const flag = int(0, 1, '0 or 1');
const widths = Type.Array(int(1, 99, 'ms'), {
  maxItems: MAX_WIDTHS,
  description: `pulse widths in ms, capped at 99, dot-separated, first ${MAX_WIDTHS} pulses`,
  codec: 'list' as Codec,
});
const label = text('^[A-Za-z0-9._-]{1,24}$', 24, 'pouch label as read at the dispensing position');
const version = text('^[A-Za-z0-9._-]{1,16}$', 16, 'firmware version');
const profileId = text('^[a-z0-9-]{1,24}$', 24, 'hardware profile id, e.g. dosis-r1');
const mcuState = oneOf(['idle', 'busy', 'latched'] as const, 'MCU state');
const count = int(0, 255, 'pulses the pill sensor saw');

const opt = <T extends TSchema>(s: T) => Type.Optional(s);
const fields = <P extends TProperties>(p: P) => Type.Object(p, { additionalProperties: false });

// ---------------------------------------------------------------- the catalogue

export type CommandDef = {
  fields: TObject;
  /** Fields of the OK ack beyond the result. */
  ack: TObject;
  /** Event that reports the command's outcome, for motion commands. */
  result?: EventName;
  /** Moves hardware: carries a lease, and a command id the MCU remembers. */
  motion: boolean;
  /** Simulator-only debug channel: outside the catalogue hash, so a real MCU agrees on it without implementing it. */
  debug?: true;
  doc: string;
};
type EventDef = { fields: TObject; doc: string };

const outcomeFields = {
  id: commandId,
  slot,
  n: count,
  w: widths,
  empty: flag,
};

export const EVENTS = {
  BOOT: {
    fields: fields({ boot: bootId, fw: version, hw: profileId }),
    doc: 'sent once after every power-up or reset; the host reconciles before any motion',
  },
  ROTATED: {
    fields: fields({ id: commandId, slot, label: opt(label), err: opt(oneOf(['JAM', 'LABEL'] as const, 'JAM: carousel did not reach the slot; LABEL: label unreadable')) }),
    doc: 'outcome of ROTATE: the slot the index sensor reports and the label read there',
  },
  RELEASED: {
    fields: fields({ ...outcomeFields }),
    doc: 'outcome of RELEASE: pouch cut, pulses counted until the settle time, pouch-empty check',
  },
  SHAKEN: {
    fields: fields({ ...outcomeFields }),
    doc: 'outcome of SHAKE: pulses counted during the extra shake of an open pouch',
  },
  CUP: { fields: fields({ present: flag }), doc: 'the cup sensor changed' },
  BUTTON: { fields: fields({}), doc: 'the citizen pressed the button' },
  LATCHED: {
    fields: fields({ reason: oneOf(['LEASE', 'JAM', 'FAULT'] as const, 'why motion stopped') }),
    doc: 'motion stopped and the MCU latched safe until CLEAR',
  },
} as const satisfies Record<string, EventDef>;
export type EventName = keyof typeof EVENTS;

export const COMMANDS = {
  HELLO: {
    fields: fields({ v: int(1, 99, 'protocol version'), cat: hex8('catalogue hash') }),
    ack: fields({ v: int(1, 99, 'protocol version'), cat: hex8('catalogue hash'), hw: profileId, fw: version, boot: bootId }),
    motion: false,
    doc: 'first exchange; clears the receiver\'s duplicate-seq window; ERR:VERSION when v or cat differ',
  },
  STATUS: {
    fields: fields({}),
    ack: fields({ st: mcuState, slot, cup: flag, boot: bootId }),
    motion: false,
    doc: 'current state, carousel position and cup',
  },
  ROTATE: {
    fields: fields({ id: commandId, slot, lease: leaseMs }),
    ack: fields({}),
    result: 'ROTATED',
    motion: true,
    doc: 'turn the carousel to a slot and read its label',
  },
  RELEASE: {
    fields: fields({ id: commandId, slot, lease: leaseMs }),
    ack: fields({}),
    result: 'RELEASED',
    motion: true,
    doc: 'cut the pouch at the dispensing position; ERR:SLOT_EMPTY if it was cut before, ERR:CUP without a cup',
  },
  SHAKE: {
    fields: fields({ id: commandId, slot, lease: leaseMs }),
    ack: fields({}),
    result: 'SHAKEN',
    motion: true,
    doc: 'shake the open pouch again to free stuck pills; ERR:NOT_OPEN if not released',
  },
  QUERY: {
    fields: fields({ id: commandId }),
    ack: fields({
      id: commandId,
      st: oneOf(['none', 'running', 'done'] as const, 'none: the MCU never saw this id (or forgot it)'),
      ev: opt(oneOf(['ROTATED', 'RELEASED', 'SHAKEN'] as const, 'the outcome event, when done')),
      slot: opt(slot),
      n: opt(count),
      w: opt(widths),
      empty: opt(flag),
      label: opt(label),
      err: opt(oneOf(['JAM', 'LABEL'] as const, 'error of a ROTATE')),
    }),
    motion: false,
    doc: 'what became of a command id: the restarted host asks instead of repeating',
  },
  SIGNAL: {
    fields: fields({ mode: oneOf(['off', 'remind', 'present', 'error'] as const, 'buzzer and light pattern') }),
    ack: fields({}),
    motion: false,
    doc: 'buzzer and light',
  },
  CLEAR: { fields: fields({}), ack: fields({}), motion: false, doc: 'leave the latched safe state' },
  FAULT: {
    fields: fields({ fault: text('^[a-zA-Z]{1,20}$', 20, 'fault name'), p: int(0, 1_000_000, 'probability in millionths') }),
    ack: fields({}),
    motion: false,
    debug: true,
    doc: 'debug channel (simulator only): set a named fault\'s rate; a real MCU answers ERR:UNSUPPORTED',
  },
  SIM: {
    fields: fields({ act: oneOf(['press', 'take', 'place'] as const, 'citizen action') }),
    ack: fields({}),
    motion: false,
    debug: true,
    doc: 'debug channel (simulator only): act as the citizen (press the button, take or place the cup)',
  },
} as const satisfies Record<string, CommandDef>;
export type CommandName = keyof typeof COMMANDS;

export const HEARTBEATS = {
  /** The host's heartbeat keeps motion leases alive. */
  host: fields({}),
  mcu: fields({ boot: bootId, st: mcuState, cup: flag }),
} as const;

export const ACK_ERRORS = [
  'VERSION', // HELLO: protocol version or catalogue hash differ
  'UNKNOWN', // no such message
  'BAD_FIELD', // a field is missing, unknown or out of range
  'LATCHED', // motion refused: latched safe, CLEAR first
  'RANGE', // slot beyond the carousel
  'SLOT_EMPTY', // RELEASE of a pouch already cut
  'NOT_OPEN', // SHAKE of a pouch not released
  'CUP', // RELEASE without a cup in place
  'ID_REUSED', // a command id seen before with other fields
  'UNSUPPORTED', // debug message on a real MCU
] as const;
export type AckError = (typeof ACK_ERRORS)[number];
export type AckResult = 'OK' | 'BUSY' | `ERR:${AckError}`;

export type CommandFields<N extends CommandName> = Static<(typeof COMMANDS)[N]['fields']>;
export type AckFields<N extends CommandName> = Static<(typeof COMMANDS)[N]['ack']>;
export type EventFields<N extends EventName> = Static<(typeof EVENTS)[N]['fields']>;

export type Command = { [N in CommandName]: { name: N } & CommandFields<N> }[CommandName];
export type DeviceEvent = { [N in EventName]: { name: N } & EventFields<N> }[EventName];
export type McuHeartbeat = Static<typeof HEARTBEATS.mcu>;
export type Ack<N extends CommandName = CommandName> =
  | { result: 'OK'; fields: AckFields<N> }
  | { result: 'BUSY' | `ERR:${AckError}`; fields: Record<string, never> };

/**
 * Short hash of a catalogue's shape, debug commands left out: what an MCU implements is all that both ends must
 * agree on, so adding or changing a simulator-only message never makes a real MCU refuse HELLO.
 */
export function catalogueHash(cat: { v: number; COMMANDS: Record<string, CommandDef>; EVENTS: object; HEARTBEATS: object; ACK_ERRORS: readonly string[] }): string {
  const commands = Object.fromEntries(Object.entries(cat.COMMANDS).filter(([, def]) => !def.debug));
  return createHash('sha256')
    .update(JSON.stringify({ v: cat.v, COMMANDS: commands, EVENTS: cat.EVENTS, HEARTBEATS: cat.HEARTBEATS, ACK_ERRORS: cat.ACK_ERRORS }))
    .digest('hex')
    .slice(0, 8)
    .toUpperCase();
}

/** The hash both ends must agree on at HELLO. */
export const CATALOGUE_HASH = catalogueHash({ v: PROTOCOL_VERSION, COMMANDS, EVENTS, HEARTBEATS, ACK_ERRORS });

// ---------------------------------------------------------------- body codec

export type BodyRejection = 'unknown_message' | 'bad_field' | 'bad_result';
export type BodyResult<T> = { ok: true; value: T } | { ok: false; reason: BodyRejection; detail: string };

const checks = new Map<TSchema, TypeCheck<TSchema>>();
function check(schema: TObject): TypeCheck<TObject> {
  let c = checks.get(schema);
  if (!c) checks.set(schema, (c = TypeCompiler.Compile(schema)));
  return c as TypeCheck<TObject>;
}

const fieldKeys = new Map<TObject, readonly string[]>();

function encodeFields(schema: TObject, values: Record<string, unknown>): string {
  let keys = fieldKeys.get(schema);
  if (!keys) fieldKeys.set(schema, (keys = Object.keys(schema.properties)));
  let out = '';
  for (const key of keys) {
    const v = values[key];
    if (v === undefined) continue;
    out += `,${key}=${Array.isArray(v) ? v.join('.') : String(v)}`;
  }
  return out;
}

function parseFields(schema: TObject, parts: string[]): BodyResult<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { ok: false, reason: 'bad_field', detail: `field ${JSON.stringify(part)} is not key=value` };
    const key = part.slice(0, eq);
    const raw = part.slice(eq + 1);
    const prop = schema.properties[key] as (TSchema & { codec?: Codec; items?: TSchema }) | undefined;
    if (!prop) return { ok: false, reason: 'bad_field', detail: `unknown field ${JSON.stringify(key)}` };
    if (key in out) return { ok: false, reason: 'bad_field', detail: `field ${key} given twice` };
    if (prop.codec === 'int') {
      if (!/^(0|[1-9][0-9]{0,9})$/.test(raw)) return { ok: false, reason: 'bad_field', detail: `${key}=${raw} is not a whole number` };
      out[key] = Number(raw);
    } else if (prop.codec === 'list') {
      if (raw === '') out[key] = [];
      else {
        const items = raw.split('.');
        if (!items.every((i) => /^(0|[1-9][0-9]{0,9})$/.test(i))) return { ok: false, reason: 'bad_field', detail: `${key}=${raw} is not a dot-separated list of whole numbers` };
        out[key] = items.map(Number);
      }
    } else {
      out[key] = raw;
    }
  }
  const c = check(schema);
  if (!c.Check(out)) {
    const e = c.Errors(out).First();
    return { ok: false, reason: 'bad_field', detail: e ? `${e.path || '/'}: ${e.message}` : 'invalid fields' };
  }
  return { ok: true, value: out };
}

export function encodeCommand(cmd: Command): string {
  const def = COMMANDS[cmd.name];
  return cmd.name + encodeFields(def.fields, cmd as Record<string, unknown>);
}

export function encodeEvent(ev: DeviceEvent): string {
  const def = EVENTS[ev.name];
  return ev.name + encodeFields(def.fields, ev as Record<string, unknown>);
}

export function encodeHeartbeat(side: 'host' | 'mcu', hb: Record<string, unknown> = {}): string {
  return 'HB' + encodeFields(HEARTBEATS[side], hb);
}

export function encodeAck<N extends CommandName>(name: N, ack: Ack<N>): string {
  return ack.result + (ack.result === 'OK' ? encodeFields(COMMANDS[name].ack, ack.fields as Record<string, unknown>) : '');
}

function split(body: string): [string, string[]] {
  const parts = body.split(',');
  return [parts[0] ?? '', parts.slice(1)];
}

export function decodeCommand(body: string): BodyResult<Command> {
  const [name, parts] = split(body);
  if (!Object.hasOwn(COMMANDS, name)) return { ok: false, reason: 'unknown_message', detail: `unknown command ${JSON.stringify(name)}` };
  const r = parseFields(COMMANDS[name as CommandName].fields, parts);
  return r.ok ? { ok: true, value: { name, ...r.value } as Command } : r;
}

export function decodeEvent(body: string): BodyResult<DeviceEvent> {
  const [name, parts] = split(body);
  if (!Object.hasOwn(EVENTS, name)) return { ok: false, reason: 'unknown_message', detail: `unknown event ${JSON.stringify(name)}` };
  const r = parseFields(EVENTS[name as EventName].fields, parts);
  return r.ok ? { ok: true, value: { name, ...r.value } as DeviceEvent } : r;
}

export function decodeHeartbeat<S extends 'host' | 'mcu'>(side: S, body: string): BodyResult<Static<(typeof HEARTBEATS)[S]>> {
  const [name, parts] = split(body);
  if (name !== 'HB') return { ok: false, reason: 'unknown_message', detail: `heartbeat body starts with ${JSON.stringify(name)}, not HB` };
  return parseFields(HEARTBEATS[side], parts) as BodyResult<Static<(typeof HEARTBEATS)[S]>>;
}

const ACK_ERROR_SET: ReadonlySet<string> = new Set(ACK_ERRORS);

/** Decodes an ack's body; its fields are checked against the acknowledged command's ack schema. */
export function decodeAck<N extends CommandName>(name: N, body: string): BodyResult<Ack<N>> {
  const [result, parts] = split(body);
  if (result === 'BUSY' || (result.startsWith('ERR:') && ACK_ERROR_SET.has(result.slice(4)))) {
    return { ok: true, value: { result: result as Ack['result'], fields: {} } as Ack<N> };
  }
  if (result !== 'OK') return { ok: false, reason: 'bad_result', detail: `ack result ${JSON.stringify(result)}` };
  const r = parseFields(COMMANDS[name].ack, parts);
  return r.ok ? { ok: true, value: { result: 'OK', fields: r.value as AckFields<N> } } : r;
}

export function isMotion(name: CommandName): boolean {
  return COMMANDS[name].motion;
}

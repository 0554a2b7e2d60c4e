// The robot-to-centre contract: event types, the device API's bodies (events, batches, heartbeats, the daily report),
// the device-id pattern. The robot (firmware-host) and the alarm centre both import it; neither defines its own.
// Request signing, the other half of the contract, is in ./signing.ts.
import { Type, type Static } from '@sinclair/typebox';

export const EVENT_TYPES = ['missed_dose', 'dose_overdue', 'dose_failed', 'dose_taken_late', 'device_fault', 'fault_cleared', 'low_supply', 'power_lost', 'power_restored', 'care_paused', 'care_resumed'] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** A device id: 1-64 of A-Z a-z 0-9 _ - (pseudonymous: never a citizen's name). */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
export const DeviceId = Type.String({ minLength: 1, maxLength: 64, pattern: DEVICE_ID_PATTERN });
export function isDeviceId(s: string): boolean {
  return DEVICE_ID_RE.test(s);
}
const DEVICE_ID_RE = new RegExp(DEVICE_ID_PATTERN);

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
export const DeviceParams = Type.Object({ deviceId: DeviceId }, { additionalProperties: false });

export const EventBody = Type.Object(
  {
    eventId: Id,
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    occurredAtMs: Type.Integer({ minimum: 0, maximum: 10_000_000_000_000 }),
    doseId: Type.Optional(Id),
    payload: Type.Record(Type.String({ maxLength: 40 }), Type.Union([Type.String({ maxLength: 200 }), Type.Number(), Type.Boolean(), Type.Null()]), { maxProperties: 20 }),
  },
  { additionalProperties: false },
);
export type EventBody = Static<typeof EventBody>;

export const BatchBody = Type.Object({ events: Type.Array(EventBody, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false });

const IngestResult = Type.Object({
  eventId: Type.String(),
  status: Type.Union([Type.Literal('stored'), Type.Literal('duplicate'), Type.Literal('conflict')]),
  alertId: Type.Union([Type.Integer(), Type.Null()]),
});
export const EventReply = IngestResult;
export const BatchReply = Type.Object({ results: Type.Array(IngestResult) });

const Count = Type.Integer({ minimum: 0, maximum: 1_000_000 });
/** The daily dosing figures a robot reports in its heartbeats: running totals for `day` (robot-local date). */
export const DailyReport = Type.Object(
  { day: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), dosings: Count, pills: Count, correct: Count, green: Count, yellow: Count, missed: Count, taken: Count },
  { additionalProperties: false },
);
export type DailyReport = Static<typeof DailyReport>;
export const HeartbeatBody = Type.Object(
  {
    sentAtMs: Type.Integer({ minimum: 0 }),
    outboxDepth: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    link: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
    mcu: Type.Union([Type.Literal('ok'), Type.Literal('fault'), Type.Literal('unknown')]),
    firmwareVersion: Type.String({ minLength: 1, maxLength: 40 }),
    report: Type.Optional(DailyReport),
  },
  { additionalProperties: false },
);
export type HeartbeatBody = Static<typeof HeartbeatBody>;
/** What the robot says of itself in a heartbeat, besides when it was sent and its outbox depth. */
export type DeviceHealth = Omit<HeartbeatBody, 'sentAtMs' | 'outboxDepth'>;
export const HeartbeatReply = Type.Object({ intervalMs: Type.Integer(), serverTimeMs: Type.Integer() });

// TypeBox schemas of the device API: events (single and batch) and heartbeats.
import { Type, type Static } from '@sinclair/typebox';

export const EVENT_TYPES = ['missed_dose', 'dose_overdue', 'dose_failed', 'dose_taken_late', 'device_fault', 'fault_cleared', 'low_supply', 'power_lost', 'power_restored'] as const;

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
export const DeviceParams = Type.Object({ deviceId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });

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
export const HeartbeatReply = Type.Object({ intervalMs: Type.Integer(), serverTimeMs: Type.Integer() });

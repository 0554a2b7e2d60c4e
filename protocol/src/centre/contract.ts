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

/**
 * An event's payload: at most 20 technical fields, each key an identifier of at most 40 characters and each value a
 * scalar (strings at most 200 characters). A key outside the pattern is refused, not ignored.
 */
export const PAYLOAD_KEY_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,39}$';
const Payload = Type.Record(
  Type.String({ pattern: PAYLOAD_KEY_PATTERN }),
  Type.Union([Type.String({ maxLength: 200 }), Type.Number({ minimum: -1e15, maximum: 1e15 }), Type.Boolean(), Type.Null()]),
  { maxProperties: 20, additionalProperties: false },
);

export const EventBody = Type.Object(
  {
    eventId: Id,
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    occurredAtMs: Type.Integer({ minimum: 0, maximum: 10_000_000_000_000 }),
    doseId: Type.Optional(Id),
    payload: Payload,
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

const Count = Type.Integer({ minimum: 0, maximum: 10_000 });
/**
 * The daily dosing figures a robot reports in its heartbeats: running totals for `day` (robot-local date).
 * `dosings` counts the pouches dispensed, of which `correct`, `green` and `yellow` are the classified ones (red is
 * unknowable to the robot); `taken`, `missed` and `failed` count the doses that ended so.
 * The shape is checked here; that the counts add up and the day is a real one is `dailyReportProblem`.
 */
export const DailyReport = Type.Object(
  {
    day: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
    dosings: Count, pills: Type.Integer({ minimum: 0, maximum: 100_000 }), correct: Count, green: Count, yellow: Count, missed: Count, taken: Count,
    failed: Type.Optional(Count),
  },
  { additionalProperties: false },
);
export type DailyReport = Static<typeof DailyReport>;

/** The most a robot-local day can run ahead of UTC (UTC+14). */
const MAX_LOCAL_AHEAD_MS = 14 * 3600_000;

/**
 * Why a daily report cannot be true, or undefined when it can: the day must be a calendar date not after the
 * robot's today (`nowMs` in any time zone), and the classified dosings (a subset of them) cannot outnumber the dosings.
 * Taken, missed and failed count the doses that ended that day, dispensed that day or not, so they are not bounded by it.
 */
export function dailyReportProblem(r: DailyReport, nowMs: number): string | undefined {
  const [y, m, d] = r.day.split('-').map(Number) as [number, number, number];
  const at = Date.UTC(y, m - 1, d);
  const back = new Date(at);
  if (y < 2000 || back.getUTCFullYear() !== y || back.getUTCMonth() !== m - 1 || back.getUTCDate() !== d) return `day ${r.day} is not a calendar date`;
  if (at > nowMs + MAX_LOCAL_AHEAD_MS) return `day ${r.day} is in the future`;
  if (r.correct + r.green + r.yellow > r.dosings) return 'correct + green + yellow exceed dosings';
  return undefined;
}
export const HeartbeatBody = Type.Object(
  {
    sentAtMs: Type.Integer({ minimum: 0 }),
    outboxDepth: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    link: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
    mcu: Type.Union([Type.Literal('ok'), Type.Literal('fault'), Type.Literal('unknown')]),
    firmwareVersion: Type.String({ minLength: 1, maxLength: 40 }),
    report: Type.Optional(DailyReport),
    /** The robot-local day before's final figures: a day whose last heartbeats never reached the centre is complete all the same. */
    previousReport: Type.Optional(DailyReport),
  },
  { additionalProperties: false },
);
export type HeartbeatBody = Static<typeof HeartbeatBody>;
/** What the robot says of itself in a heartbeat, besides when it was sent and its outbox depth. */
export type DeviceHealth = Omit<HeartbeatBody, 'sentAtMs' | 'outboxDepth'>;
export const HeartbeatReply = Type.Object({ intervalMs: Type.Integer(), serverTimeMs: Type.Integer() });

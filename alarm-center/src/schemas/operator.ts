// TypeBox schemas of the operator API: login, alerts and their actions, devices, silences, reports.
import { Type } from '@sinclair/typebox';
import { DeviceId } from '../../../protocol/src/centre/contract.js';

const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
export const ErrorReply = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String() });

export const LoginBody = Type.Object({ username: Type.String({ pattern: '^[a-z0-9._-]{2,40}$' }), password: Text(200) }, { additionalProperties: false });
export const Me = Type.Object({ username: Type.String(), role: Type.String() });

export const Alert = Type.Object({
  id: Type.Integer(), deviceId: Type.String(), type: Type.String(), urgency: Type.Integer(), doseId: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(), openedAtMs: Type.Integer(), claimedBy: Type.Union([Type.String(), Type.Null()]),
  claimedAtMs: Type.Union([Type.Integer(), Type.Null()]), escalatedAtMs: Type.Union([Type.Integer(), Type.Null()]),
  resolvedAtMs: Type.Union([Type.Integer(), Type.Null()]), outcome: Type.Union([Type.String(), Type.Null()]),
  reportCount: Type.Integer(), notifyCount: Type.Integer(), contactAttempts: Type.Integer(), version: Type.Integer(),
});
const Priority = Type.Union([Type.Literal('high'), Type.Literal('medium'), Type.Literal('low')]);
export const QueuedAlert = Type.Composite([Alert, Type.Object({ priority: Priority, district: Type.Union([Type.String(), Type.Null()]) })]);
export const AlertList = Type.Object({
  serverTimeMs: Type.Integer(),
  /** How many alerts the filters match, of which `alerts` is the page from `offset`. */
  total: Type.Integer(), offset: Type.Integer(),
  /** Live alerts per priority, whatever the filters; `unclaimed` those of them nobody holds (they sound). */
  counts: Type.Object({ high: Type.Integer(), medium: Type.Integer(), low: Type.Integer() }),
  unclaimed: Type.Object({ high: Type.Integer(), medium: Type.Integer(), low: Type.Integer() }),
  alerts: Type.Array(QueuedAlert),
});
export const AlertParams = Type.Object({ id: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
export const AlertQuery = Type.Object(
  {
    all: Type.Optional(Type.Boolean()),
    state: Type.Optional(Type.Union(['open', 'claimed', 'escalated', 'resolved', 'cancelled'].map((x) => Type.Literal(x)))),
    priority: Type.Optional(Priority),
    type: Type.Optional(Type.String({ maxLength: 40, pattern: '^[a-z_]+$' })),
    deviceId: Type.Optional(DeviceId),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  },
  { additionalProperties: false },
);

export const OUTCOMES = ['reached_taken', 'reached_will_take', 'home_care_sent', 'not_reached_escalated', 'false_alarm', 'device_repaired', 'other'] as const;
export const ContactResults = ['answered', 'no_answer', 'busy', 'wrong_number'] as const;
const Note = Type.Optional(Type.String({ maxLength: 500 }));
export const ClaimBody = Type.Object({ version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
export const ContactBody = Type.Object({ version: Type.Integer({ minimum: 1 }), result: Type.Union(ContactResults.map((r) => Type.Literal(r))), note: Note }, { additionalProperties: false });
export const EscalateBody = Type.Object({ version: Type.Integer({ minimum: 1 }), note: Note }, { additionalProperties: false });
export const ResolveBody = Type.Object({ version: Type.Integer({ minimum: 1 }), outcome: Type.Union(OUTCOMES.map((o) => Type.Literal(o))), note: Note }, { additionalProperties: false });

/** A citizen's contact details: at most 10 labelled lines, each label a word or two of at most 40 characters. */
export const Contact = Type.Record(Type.String({ pattern: '^\\p{L}[\\p{L}\\p{N} _-]{0,39}$' }), Type.String({ maxLength: 200 }), { maxProperties: 10, additionalProperties: false });
/** The reply's serializer matches keys without Unicode classes, so the stored (checked) labels go out as they are. */
export const ContactReply = Type.Record(Type.String(), Type.String());
export const AuditList = Type.Array(Type.Object({ id: Type.Integer(), atMs: Type.Integer(), actor: Type.String(), action: Type.String(), version: Type.Union([Type.Integer(), Type.Null()]), detail: Type.Union([Type.String(), Type.Null()]) }));

export const DeviceParams = Type.Object({ deviceId: DeviceId }, { additionalProperties: false });
export const DISTRICT_PATTERN = '^[\\p{L}\\p{N} ._-]{1,60}$';
export const District = Type.String({ minLength: 1, maxLength: 60, pattern: DISTRICT_PATTERN });
export const RegisterBody = Type.Object({ deviceId: DeviceId, district: Type.Optional(District) }, { additionalProperties: false });
export const DistrictBody = Type.Object({ district: Type.Union([District, Type.Null()]) }, { additionalProperties: false });
export const RegisterReply = Type.Object({ deviceId: Type.String(), secret: Type.String() });
export const DeviceHealth = Type.Object({
  deviceId: Type.String(), district: Type.Union([Type.String(), Type.Null()]), status: Type.String(), lastHeartbeatAtMs: Type.Union([Type.Integer(), Type.Null()]), outboxDepth: Type.Union([Type.Integer(), Type.Null()]),
  link: Type.Union([Type.String(), Type.Null()]), mcu: Type.Union([Type.String(), Type.Null()]), firmwareVersion: Type.Union([Type.String(), Type.Null()]),
  maxSeq: Type.Integer(), missingSeqs: Type.Integer(), lowSupply: Type.Boolean(), silenced: Type.Boolean(),
});
export const SilenceBody = Type.Object({ deviceId: DeviceId, reason: Type.Union([Type.Literal('hospital'), Type.Literal('away'), Type.Literal('maintenance'), Type.Literal('other')]), endsAtMs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });
export const Silence = Type.Object({ id: Type.Integer(), deviceId: Type.String(), reason: Type.String(), startsAtMs: Type.Integer(), endsAtMs: Type.Integer(), createdBy: Type.String() });
export const SilenceParams = Type.Object({ id: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
const N = Type.Union([Type.Number(), Type.Null()]);
export const ReportRow = Type.Object({
  month: Type.String(), dosings: Type.Integer(), pills: Type.Integer(), correct: Type.Integer(), green: Type.Integer(), yellow: Type.Integer(),
  missed: Type.Integer(), failed: Type.Integer(), taken: Type.Integer(), accuracy: N, adherence: N, alerts: Type.Integer(), meanClaimMs: N, meanResolveMs: N,
});
export const ReportQuery = Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])) }, { additionalProperties: false });
export const AdherenceQuery = Type.Object(
  { by: Type.Optional(Type.Union([Type.Literal('month'), Type.Literal('device'), Type.Literal('district')])), format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])) },
  { additionalProperties: false },
);
export const AdherenceRow = Type.Object({
  month: Type.String(), group: Type.String(), taken: Type.Integer(), missed: Type.Integer(), failed: Type.Integer(), due: Type.Integer(), adherence: N,
});
export const MessagesQuery = Type.Object({ lang: Type.Optional(Type.Union([Type.Literal('da'), Type.Literal('en')])) }, { additionalProperties: false });

// TypeBox schemas of the operator API: login, alerts and their actions, devices, silences, reports.
import { Type } from '@sinclair/typebox';
import { DeviceId } from '../../../protocol/src/centre/contract.js';

const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
export const ErrorReply = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String() });

export const LoginBody = Type.Object({ username: Text(40), password: Text(200) }, { additionalProperties: false });
export const Me = Type.Object({ username: Type.String(), role: Type.String() });

export const Alert = Type.Object({
  id: Type.Integer(), deviceId: Type.String(), type: Type.String(), urgency: Type.Integer(), doseId: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(), openedAtMs: Type.Integer(), claimedBy: Type.Union([Type.String(), Type.Null()]),
  claimedAtMs: Type.Union([Type.Integer(), Type.Null()]), escalatedAtMs: Type.Union([Type.Integer(), Type.Null()]),
  resolvedAtMs: Type.Union([Type.Integer(), Type.Null()]), outcome: Type.Union([Type.String(), Type.Null()]),
  reportCount: Type.Integer(), notifyCount: Type.Integer(), contactAttempts: Type.Integer(), version: Type.Integer(),
});
export const AlertList = Type.Object({ serverTimeMs: Type.Integer(), alerts: Type.Array(Alert) });
export const AlertParams = Type.Object({ id: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
export const AlertQuery = Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

export const OUTCOMES = ['reached_taken', 'reached_will_take', 'home_care_sent', 'not_reached_escalated', 'false_alarm', 'device_repaired', 'other'] as const;
export const ContactResults = ['answered', 'no_answer', 'busy', 'wrong_number'] as const;
const Note = Type.Optional(Type.String({ maxLength: 500 }));
export const ClaimBody = Type.Object({ version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
export const ContactBody = Type.Object({ version: Type.Integer({ minimum: 1 }), result: Type.Union(ContactResults.map((r) => Type.Literal(r))), note: Note }, { additionalProperties: false });
export const EscalateBody = Type.Object({ version: Type.Integer({ minimum: 1 }), note: Note }, { additionalProperties: false });
export const ResolveBody = Type.Object({ version: Type.Integer({ minimum: 1 }), outcome: Type.Union(OUTCOMES.map((o) => Type.Literal(o))), note: Note }, { additionalProperties: false });

export const Contact = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 200 }), { maxProperties: 10 });
export const AuditList = Type.Array(Type.Object({ id: Type.Integer(), atMs: Type.Integer(), actor: Type.String(), action: Type.String(), version: Type.Union([Type.Integer(), Type.Null()]), detail: Type.Union([Type.String(), Type.Null()]) }));

export const DeviceParams = Type.Object({ deviceId: DeviceId }, { additionalProperties: false });
export const RegisterBody = Type.Object({ deviceId: DeviceId }, { additionalProperties: false });
export const RegisterReply = Type.Object({ deviceId: Type.String(), secret: Type.String() });
export const DeviceHealth = Type.Object({
  deviceId: Type.String(), status: Type.String(), lastHeartbeatAtMs: Type.Union([Type.Integer(), Type.Null()]), outboxDepth: Type.Union([Type.Integer(), Type.Null()]),
  link: Type.Union([Type.String(), Type.Null()]), mcu: Type.Union([Type.String(), Type.Null()]), firmwareVersion: Type.Union([Type.String(), Type.Null()]),
  maxSeq: Type.Integer(), missingSeqs: Type.Integer(), lowSupply: Type.Boolean(), silenced: Type.Boolean(),
});
export const SilenceBody = Type.Object({ deviceId: DeviceId, reason: Type.Union([Type.Literal('hospital'), Type.Literal('away'), Type.Literal('maintenance'), Type.Literal('other')]), endsAtMs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });
export const Silence = Type.Object({ id: Type.Integer(), deviceId: Type.String(), reason: Type.String(), startsAtMs: Type.Integer(), endsAtMs: Type.Integer(), createdBy: Type.String() });
export const SilenceParams = Type.Object({ id: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
const N = Type.Union([Type.Number(), Type.Null()]);
export const ReportRow = Type.Object({
  month: Type.String(), dosings: Type.Integer(), pills: Type.Integer(), correct: Type.Integer(), green: Type.Integer(), yellow: Type.Integer(),
  missed: Type.Integer(), taken: Type.Integer(), accuracy: N, adherence: N, alerts: Type.Integer(), meanClaimMs: N, meanResolveMs: N,
});

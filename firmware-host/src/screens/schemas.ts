// Request schemas of the screens' HTTP API (TypeBox, strict: no extra properties, every string bounded).

import { Type } from '@fastify/type-provider-typebox';

/** A manifest may be this large (bytes of UTF-8); the JSON body around it may be larger because of escaping. */
export const MANIFEST_MAX_BYTES = 2 * 1024 * 1024;
// Worst case a manifest is all quotes and backslashes, each escaped to two characters.
export const MANIFEST_BODY_LIMIT = 2 * MANIFEST_MAX_BYTES + 64 * 1024;

export const Lang = Type.Union([Type.Literal('da'), Type.Literal('en')]);

export const PageQuery = Type.Object({ lang: Type.Optional(Lang) });

export const LoginBody = Type.Object(
  {
    staffId: Type.String({ minLength: 1, maxLength: 64 }),
    pin: Type.String({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);

export const ValidateBody = Type.Object(
  {
    manifest: Type.String({ maxLength: MANIFEST_MAX_BYTES }),
    /** The staff choose to take back the loaded roll's pouches not yet dispensed. */
    returnPending: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const LoadBody = Type.Object(
  {
    manifest: Type.String({ maxLength: MANIFEST_MAX_BYTES }),
    /** The sha256 the validate step answered: staff confirm exactly the manifest they saw checked. */
    confirmSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    returnPending: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const UnloadBody = Type.Object({ confirm: Type.Literal(true) }, { additionalProperties: false });

export const ReceiptParams = Type.Object(
  { id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }) },
  { additionalProperties: false },
);

export const StaticParams = Type.Object({ file: Type.String({ pattern: '^[a-z-]+\\.(css|js)$', maxLength: 64 }) });

const StaffPin = {
  adminId: Type.String({ minLength: 1, maxLength: 64 }),
  adminPin: Type.String({ minLength: 1, maxLength: 64 }),
};

/** Binding the robot to a citizen takes an administrator's PIN, typed again, whoever is logged in. */
export const CommissionBody = Type.Object(
  { ...StaffPin, citizenId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' }) },
  { additionalProperties: false },
);

export const DecommissionBody = Type.Object({ ...StaffPin, confirm: Type.Literal(true) }, { additionalProperties: false });

const Instant = Type.Integer({ minimum: 0, maximum: 10_000_000_000_000 });

export const PauseBody = Type.Object(
  { fromMs: Instant, untilMs: Instant, reason: Type.String({ pattern: '^[a-z_]{1,40}$' }) },
  { additionalProperties: false },
);

export const EndPauseBody = Type.Object({ confirm: Type.Literal(true) }, { additionalProperties: false });

/** Releasing doses ahead of time takes the staff member's PIN again. */
export const TravelBody = Type.Object(
  { count: Type.Integer({ minimum: 1, maximum: 999 }), pin: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);

export const WithdrawBody = Type.Union([
  Type.Object({ fromMs: Instant }, { additionalProperties: false }),
  Type.Object({ doseIds: Type.Array(Type.String({ pattern: '^[A-Z0-9]{1,16}-[0-9]{3}$' }), { minItems: 1, maxItems: 999 }) }, { additionalProperties: false }),
]);

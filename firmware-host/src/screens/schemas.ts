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
  { manifest: Type.String({ maxLength: MANIFEST_MAX_BYTES }) },
  { additionalProperties: false },
);

export const LoadBody = Type.Object(
  {
    manifest: Type.String({ maxLength: MANIFEST_MAX_BYTES }),
    /** The sha256 the validate step answered: staff confirm exactly the manifest they saw checked. */
    confirmSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);

export const UnloadBody = Type.Object({ confirm: Type.Literal(true) }, { additionalProperties: false });

export const ReceiptParams = Type.Object(
  { id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }) },
  { additionalProperties: false },
);

export const StaticParams = Type.Object({ file: Type.String({ pattern: '^[a-z-]+\\.(css|js)$', maxLength: 64 }) });

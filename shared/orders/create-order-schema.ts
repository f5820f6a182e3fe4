import { Type, type Static } from 'typebox';

/** The body of POST /v1/orders (the public contract). Unknown fields are refused, not dropped. */
export const CreateOrderBody = Type.Object(
  {
    merchantId: Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'id of a merchants row, as a decimal string' }),
    dropoff: Type.Object(
      {
        lat: Type.Number({ minimum: -90, maximum: 90 }),
        lng: Type.Number({ minimum: -180, maximum: 180 }),
        address: Type.String({ minLength: 1, maxLength: 500 }),
        phone: Type.String({ pattern: '^\\+?[0-9][0-9 ()-]{4,30}$' }),
      },
      { additionalProperties: false },
    ),
    items: Type.Array(
      Type.Object(
        {
          sku: Type.String({ minLength: 1, maxLength: 64 }),
          name: Type.String({ minLength: 1, maxLength: 200 }),
          qty: Type.Integer({ minimum: 1, maximum: 999 }),
          priceCents: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export type CreateOrderBody = Static<typeof CreateOrderBody>;

/** 1-255 printable ASCII characters, as the IETF idempotency-key draft and Stripe accept. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]$|^[\x21-\x7e]$/;

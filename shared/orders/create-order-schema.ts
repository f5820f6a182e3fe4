import { Type, type Static } from 'typebox';

/**
 * An item of an order. A field's `description` says what it takes: /docs shows it, and a value that
 * breaks a pattern is answered with it ("dropoff.phone must be a phone number: ...").
 */
export const ItemSchema = Type.Object(
  {
    sku: Type.String({ minLength: 1, maxLength: 64 }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    qty: Type.Integer({ minimum: 1, maximum: 999 }),
    priceCents: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
  },
  { additionalProperties: false },
);

/** The body of POST /v1/orders (the public contract). Unknown fields are refused, not dropped. */
export const CreateOrderBody = Type.Object(
  {
    merchantId: Type.String({
      pattern: '^[1-9][0-9]{0,18}$',
      description: 'the id of a merchant, as a decimal string (1-19 digits, no leading zero)',
      examples: ['1001'],
    }),
    dropoff: Type.Object(
      {
        lat: Type.Number({ minimum: -90, maximum: 90 }),
        lng: Type.Number({ minimum: -180, maximum: 180 }),
        address: Type.String({ minLength: 1, maxLength: 500 }),
        phone: Type.String({
          pattern: '^\\+?[0-9][0-9 ()-]{4,30}$',
          description: 'a phone number: a digit first (after an optional +), then 4-30 digits, spaces, ( ) or -',
          examples: ['+8613800000000'],
        }),
      },
      { additionalProperties: false },
    ),
    items: Type.Array(ItemSchema, { minItems: 1, maxItems: 100 }),
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export type CreateOrderBody = Static<typeof CreateOrderBody>;

/** 1-255 printable ASCII characters, as the IETF idempotency-key draft and Stripe accept. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]$|^[\x21-\x7e]$/;

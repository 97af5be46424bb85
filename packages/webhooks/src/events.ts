/**
 * The events Lumenpay sends and the objects inside them. The `*_FIELDS` maps mirror the interfaces
 * at run time (the compiler keeps the two identical), so the server's test suite can compare them
 * with the API's JSON schemas and fail when either side changes alone.
 */

/** Every event type Lumenpay emits. */
export const EVENT_TYPES = [
  "payment.created",
  "payment.partially_paid",
  "payment.confirmed",
  "payment.expired",
  "payment.canceled",
  "payment.late_payment_received",
  "payment.unmatched_received",
  "endpoint.disabled",
  "webhook.test",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Version of the envelope and objects typed here; events carry theirs in `api_version`. */
export const API_VERSION = "2026-11-01";

export const PAYMENT_STATUSES = ["pending", "partially_paid", "confirmed", "expired", "canceled"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const MEMO_TYPES = ["text", "id", "hash"] as const;
export type MemoType = (typeof MEMO_TYPES)[number];

/** `"XLM"` for the native asset, `{ code, issuer }` for an issued one. */
export type Asset = "XLM" | { code: string; issuer: string };

/** One on-chain operation that paid a payment. */
export interface Settlement {
  transaction_hash: string;
  /** Horizon operation id. */
  operation_id: string;
  ledger: number;
  /** Close time of the ledger (ISO 8601). */
  closed_at: string;
  /** Decimal string. */
  amount: string;
  asset: Asset;
  /** Paying account (G…). */
  from: string;
  /** Closed after the payment's deadline (expiry, or cancellation if earlier) or after it was fully paid; not in `amount_received`. */
  late: boolean;
}

export interface Payment {
  id: string;
  object: "payment";
  status: PaymentStatus;
  /** Decimal string, up to 7 decimals; never a float. */
  amount: string;
  asset: Asset;
  /** Where the customer pays: an M address for a muxed payment, else the G account. */
  destination: string;
  /** The G account that receives the funds. */
  destination_account: string;
  /** uint64 id of the M address as a decimal string; null when a memo is used. */
  muxed_id: string | null;
  memo_type: MemoType | null;
  memo: string | null;
  /** Sum of the settlements that are not late, a decimal string. */
  amount_received: string;
  overpaid: boolean;
  settlements: Settlement[];
  description: string | null;
  metadata: Record<string, string>;
  /** Where the hosted payment page sends the customer once paid; null when none was given. */
  success_url: string | null;
  payment_url: string;
  sep7_uri: string;
  expires_at: string;
  /** Seconds after `expires_at` during which operations are still recorded against the payment (as late). */
  monitor_for: number;
  created_at: string;
  updated_at: string;
  /** When it was canceled; kept if an operation that closed before then paid it after all. */
  canceled_at: string | null;
  /** Close time of the ledger whose operation completed the amount. */
  confirmed_at: string | null;
  /** When Lumenpay expired it; kept if an operation that closed in time paid it after all. */
  expired_at: string | null;
}

export const UNMATCHED_REASONS = ["no_memo", "unknown_memo", "wrong_asset", "before_payment", "after_monitoring_window"] as const;
export type UnmatchedReason = (typeof UNMATCHED_REASONS)[number];

/** Money that reached one of your accounts without settling a payment: refund or reconcile it. */
export interface UnmatchedPayment {
  id: string;
  object: "unmatched_payment";
  reason: UnmatchedReason;
  /** Decimal string. */
  amount: string;
  asset: Asset;
  /** Where it was paid: an M address for a muxed destination, else the G account. */
  destination: string;
  destination_account: string;
  muxed_id: string | null;
  memo_type: "none" | "text" | "id" | "hash" | "return";
  /** Text as UTF-8, id as a decimal, hash and return as hex; null for none. */
  memo: string | null;
  /** Paying account (G…): where a refund would go. */
  from: string;
  transaction_hash: string;
  operation_id: string;
  ledger: number;
  closed_at: string;
  /** The payment its memo or muxed id names, when there is one. */
  payment_id: string | null;
  created_at: string;
}

export interface WebhookEndpoint {
  id: string;
  object: "webhook_endpoint";
  url: string;
  description: string | null;
  enabled_events: string[];
  disabled: boolean;
  disabled_reason: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

interface Envelope<T extends EventType, O> {
  id: string;
  type: T;
  created_at: string;
  api_version: string;
  /** Per-payment counter: keep the highest applied and drop events with a lower one. */
  sequence?: number;
  data: { object: O };
}

type PaymentEventType = Exclude<Extract<EventType, `payment.${string}`>, "payment.unmatched_received">;

/** A verified Lumenpay event; switch on `type` and `data.object` has the matching type. */
export type LumenpayEvent =
  | { [T in PaymentEventType]: Envelope<T, Payment> }[PaymentEventType]
  | Envelope<"payment.unmatched_received", UnmatchedPayment>
  | Envelope<"endpoint.disabled", WebhookEndpoint>
  | Envelope<"webhook.test", WebhookEndpoint>;

/** The event of one type, e.g. `EventOf<"payment.confirmed">`. */
export type EventOf<T extends EventType> = Extract<LumenpayEvent, { type: T }>;

/** JSON Schema type names of a TypeScript type (distributes over unions). */
export type JsonTypeOf<T> = T extends null
  ? "null"
  : T extends string
    ? "string"
    : T extends number
      ? "number"
      : T extends boolean
        ? "boolean"
        : T extends readonly unknown[]
          ? "array"
          : T extends object
            ? "object"
            : never;

export type JsonType = "null" | "string" | "number" | "boolean" | "array" | "object";

/**
 * For each field of `T`, exactly the JSON types it can take, as `{ string: true, null: true }`:
 * object keys rather than an array so the compiler rejects a missing type as well as an extra one.
 */
export type FieldTypes<T> = {
  readonly [K in keyof T]-?: { readonly [J in JsonTypeOf<T[K]>]: true } & {
    readonly [J in Exclude<JsonType, JsonTypeOf<T[K]>>]?: never;
  };
};

const string = { string: true } as const;
const nullableString = { string: true, null: true } as const;
const asset = { string: true, object: true } as const;

export const PAYMENT_FIELDS = {
  id: string,
  object: string,
  status: string,
  amount: string,
  asset,
  destination: string,
  destination_account: string,
  muxed_id: nullableString,
  memo_type: nullableString,
  memo: nullableString,
  amount_received: string,
  overpaid: { boolean: true },
  settlements: { array: true },
  description: nullableString,
  metadata: { object: true },
  success_url: nullableString,
  payment_url: string,
  sep7_uri: string,
  expires_at: string,
  monitor_for: { number: true },
  created_at: string,
  updated_at: string,
  canceled_at: nullableString,
  confirmed_at: nullableString,
  expired_at: nullableString,
} as const satisfies FieldTypes<Payment>;

export const UNMATCHED_PAYMENT_FIELDS = {
  id: string,
  object: string,
  reason: string,
  amount: string,
  asset,
  destination: string,
  destination_account: string,
  muxed_id: nullableString,
  memo_type: string,
  memo: nullableString,
  from: string,
  transaction_hash: string,
  operation_id: string,
  ledger: { number: true },
  closed_at: string,
  payment_id: nullableString,
  created_at: string,
} as const satisfies FieldTypes<UnmatchedPayment>;

export const SETTLEMENT_FIELDS = {
  transaction_hash: string,
  operation_id: string,
  ledger: { number: true },
  closed_at: string,
  amount: string,
  asset,
  from: string,
  late: { boolean: true },
} as const satisfies FieldTypes<Settlement>;

export const WEBHOOK_ENDPOINT_FIELDS = {
  id: string,
  object: string,
  url: string,
  description: nullableString,
  enabled_events: { array: true },
  disabled: { boolean: true },
  disabled_reason: nullableString,
  previous_secret_expires_at: nullableString,
  created_at: string,
  updated_at: string,
} as const satisfies FieldTypes<WebhookEndpoint>;

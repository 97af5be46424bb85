import { statement, type Db } from "../db/pool.js";
import { outboxStatement } from "../events/outbox.js";
import type { IdempotencyScope } from "../http/idempotency.js";
import type { Position } from "../http/pagination.js";
import type { Asset } from "../stellar/assets.js";
import type { Memo, MemoType } from "../stellar/memo.js";

export const PAYMENT_STATUSES = ["pending", "partially_paid", "confirmed", "expired", "canceled"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** An on-chain operation that paid (or, when `late`, arrived for) a payment. */
export interface Settlement {
  operationId: string;
  transactionHash: string;
  ledger: number;
  closedAt: Date;
  amountStroops: bigint;
  from: string;
  late: boolean;
}

export interface Payment {
  id: string;
  merchantId: string;
  status: PaymentStatus;
  amountStroops: bigint;
  asset: Asset;
  /** The G account paid; with `muxedId` the customer pays its M address instead. */
  destination: string;
  muxedId: string | null;
  /** Null exactly when `muxedId` is set. */
  memo: Memo | null;
  /** What the settlements that are not late add up to. */
  amountReceivedStroops: bigint;
  description: string | null;
  metadata: Record<string, string>;
  /** Where the checkout's "Continue" link leads once the payment is paid. */
  successUrl: string | null;
  expiresAt: Date;
  /** How long after `expiresAt` operations still match this payment (as late ones). */
  monitorForS: number;
  canceledAt: Date | null;
  confirmedAt: Date | null;
  expiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  settlements: Settlement[];
}

interface SettlementJson {
  operation_id: string;
  transaction_hash: string;
  ledger: number;
  closed_at: string;
  amount_stroops: string;
  from_account: string;
  late: boolean;
}

export interface PaymentRow {
  id: string;
  merchant_id: string;
  status: PaymentStatus;
  amount_stroops: string;
  asset_code: string;
  asset_issuer: string | null;
  destination: string;
  muxed_id: string | null;
  memo_type: MemoType | null;
  memo: string | null;
  amount_received_stroops: string;
  description: string | null;
  metadata: Record<string, string>;
  success_url: string | null;
  expires_at: Date;
  monitor_for_s: number;
  canceled_at: Date | null;
  confirmed_at: Date | null;
  expired_at: Date | null;
  created_at: Date;
  updated_at: Date;
  settlements: SettlementJson[];
}

/** A payment row with its settlements; bigints are cast to text because JSON numbers are floats. */
export const COLUMNS = `payments.*, (
  select coalesce(json_agg(json_build_object(
    'operation_id', s.operation_id::text, 'transaction_hash', s.transaction_hash, 'ledger', s.ledger,
    'closed_at', s.closed_at, 'amount_stroops', s.amount_stroops::text, 'from_account', s.from_account, 'late', s.late
  ) order by s.operation_id), '[]'::json)
  from payment_settlements s where s.payment_id = payments.id) as settlements`;

export const toPayment = (r: PaymentRow): Payment => ({
  id: r.id,
  merchantId: r.merchant_id,
  status: r.status,
  amountStroops: BigInt(r.amount_stroops),
  asset: { code: r.asset_code, issuer: r.asset_issuer },
  destination: r.destination,
  muxedId: r.muxed_id,
  memo: r.memo_type !== null && r.memo !== null ? { type: r.memo_type, value: r.memo } : null,
  amountReceivedStroops: BigInt(r.amount_received_stroops),
  description: r.description,
  metadata: r.metadata,
  successUrl: r.success_url,
  expiresAt: r.expires_at,
  monitorForS: r.monitor_for_s,
  canceledAt: r.canceled_at,
  confirmedAt: r.confirmed_at,
  expiredAt: r.expired_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  settlements: r.settlements.map((s) => ({
    operationId: s.operation_id,
    transactionHash: s.transaction_hash,
    ledger: s.ledger,
    closedAt: new Date(s.closed_at),
    amountStroops: BigInt(s.amount_stroops),
    from: s.from_account,
    late: s.late,
  })),
});

export type NewPayment = Omit<
  Payment,
  "status" | "amountReceivedStroops" | "canceledAt" | "confirmedAt" | "expiredAt" | "updatedAt" | "settlements"
>;

/** A new payment with its `payment.created` event, as `insertPaymentsWithEvents` writes it. */
export interface PaymentInsert {
  payment: NewPayment;
  event: { id: string; body: string };
  /**
   * The Idempotency-Key its request carried, recorded with the payment (http/idempotency.ts), the
   * stored response being the payment's public shape (taken from the event, which carries it) with
   * `status`. PostgreSQL refuses the whole statement when another request recorded the key first.
   */
  idempotency?: IdempotencyScope & { status: number };
}

/** `created` is false when nothing was written; `queued`: a delivery is due, so wake the workers once this has committed. */
export interface PaymentWritten {
  created: boolean;
  queued: boolean;
}

/**
 * Pending payments, each with its `payment.created` event (its first: sequence 1), the event's
 * deliveries and the record of its Idempotency-Key if it has one, as one statement, so that creating
 * payments is one round trip in an implicit transaction, however many (`createPaymentBatch`,
 * service.ts). A payment is not `created` when another open payment already uses its destination and
 * memo (one earlier in the list included), or its muxed id is taken: then nothing of it was written
 * (`on conflict do nothing` also keeps a caller's transaction usable for a retry). The rows are sent in the order of their destination and memo, so
 * that two batches wanting the same memos wait for each other in one order rather than deadlock (a
 * deadlock would still only retry the rows one by one: db/batcher.ts). Named when `prepared`
 * (db/pool.ts `statement`): parsing and planning this statement afresh was a third of PostgreSQL's
 * work per batch.
 */
export async function insertPaymentsWithEvents(db: Db, inserts: PaymentInsert[], prepared: boolean): Promise<PaymentWritten[]> {
  const rows = inserts.map(inputRow);
  const ordered = rows.length === 1 ? rows : [...rows].sort((a, b) => compareKeys(writeOrder(a), writeOrder(b)));
  const { rows: written } = await db.query<{ id: string; queued: boolean }>(
    statement("lumenpay_insert_payments_with_events", prepared, INSERT_PAYMENTS_WITH_EVENTS, [JSON.stringify(ordered)]),
  );
  const queued = new Map(written.map((w) => [w.id, w.queued]));
  return inserts.map(({ payment }) => ({ created: queued.has(payment.id), queued: queued.get(payment.id) === true }));
}

function inputRow({ payment: p, event, idempotency }: PaymentInsert) {
  return {
    id: p.id,
    merchant_id: p.merchantId,
    amount_stroops: p.amountStroops.toString(),
    asset_code: p.asset.code,
    asset_issuer: p.asset.issuer,
    destination: p.destination,
    muxed_id: p.muxedId,
    memo_type: p.memo?.type ?? null,
    memo: p.memo?.value ?? null,
    description: p.description,
    metadata: p.metadata,
    success_url: p.successUrl,
    expires_at: p.expiresAt,
    monitor_for_s: p.monitorForS,
    created_at: p.createdAt,
    event_id: event.id,
    event_body: event.body,
    idempotency_key: idempotency?.key ?? null,
    request_hash: idempotency?.requestHash.toString("hex") ?? null,
    response_status: idempotency?.status ?? null,
  };
}

const writeOrder = (r: { destination: string; memo_type: string | null; memo: string | null; muxed_id: string | null }) => [
  r.destination,
  r.memo_type ?? "",
  r.memo ?? "",
  r.muxed_id ?? "",
];
function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

// One JSON parameter for every row: serialized natively (settlement-store.ts does the same).
const INSERT_PAYMENTS_WITH_EVENTS = outboxStatement(
  `insert into events (id, merchant_id, type, payment_id, sequence, body, created_at)
   select input.event_id, input.merchant_id, 'payment.created', input.id, 1, input.event_body, input.created_at
   from payment join input using (id)
   returning id, merchant_id, type, created_at, payment_id`,
  {
    merchant: "event.merchant_id",
    type: "event.type",
    now: "event.created_at",
    before: `input as (
      select * from json_to_recordset($1::json) as i(id text, merchant_id text, amount_stroops bigint, asset_code text,
        asset_issuer text, destination text, muxed_id text, memo_type text, memo text, description text, metadata jsonb,
        success_url text, expires_at timestamptz, monitor_for_s int, created_at timestamptz, event_id text, event_body text,
        idempotency_key text, request_hash text, response_status int)
    ),
    payment as (
      insert into payments (id, merchant_id, amount_stroops, asset_code, asset_issuer, destination, muxed_id, memo_type, memo,
        description, metadata, success_url, expires_at, monitor_for_s, created_at, updated_at, event_sequence)
      select id, merchant_id, amount_stroops, asset_code, asset_issuer, destination, muxed_id, memo_type, memo,
        description, metadata, success_url, expires_at, monitor_for_s, created_at, created_at, 1
      from input
      on conflict do nothing
      returning id),
    record as (
      insert into idempotency_keys (merchant_id, key, request_hash, response_status, response_body, created_at)
      select input.merchant_id, input.idempotency_key, decode(input.request_hash, 'hex'), input.response_status,
        input.event_body::jsonb -> 'data' -> 'object', input.created_at
      from payment join input using (id)
      where input.idempotency_key is not null)`,
    select: `select event.payment_id as id, exists (select 1 from deliveries d where d.event_id = event.id and d.status = 'pending') as queued
      from event`,
  },
);

/** One merchant's payment; another merchant's id reads as absent. `forUpdate` locks the row. */
export async function getPayment(db: Db, merchantId: string, id: string, { forUpdate = false } = {}): Promise<Payment | undefined> {
  const { rows } = await db.query<PaymentRow>(
    `select ${COLUMNS} from payments where id = $1 and merchant_id = $2${forUpdate ? " for update" : ""}`,
    [id, merchantId],
  );
  return rows[0] && toPayment(rows[0]);
}

/** For the public payment page, which knows only the id (unguessable, like the link it is in). */
export async function findPayment(db: Db, id: string): Promise<Payment | undefined> {
  const { rows } = await db.query<PaymentRow>(`select ${COLUMNS} from payments where id = $1`, [id]);
  return rows[0] && toPayment(rows[0]);
}

export async function setPaymentCanceled(db: Db, id: string, now: Date): Promise<Payment> {
  const { rows } = await db.query<PaymentRow>(
    `update payments set status = 'canceled', canceled_at = $2, updated_at = $2 where id = $1 returning ${COLUMNS}`,
    [id, now],
  );
  return toPayment(rows[0]!);
}

export interface PaymentFilter {
  merchantId: string;
  status?: PaymentStatus;
  createdGte?: Date;
  createdLte?: Date;
  /** Payments whose id, memo or one of whose metadata values is exactly this. */
  search?: string;
  after?: Position;
  limit: number;
}

/** Newest first (`created_at desc, id desc`, served by payments_merchant_created_idx). */
export async function listPayments(db: Db, f: PaymentFilter): Promise<Payment[]> {
  const { rows } = await db.query<PaymentRow>(
    `select ${COLUMNS} from payments
     where merchant_id = $1
       and ($2::text is null or status = $2)
       and ($3::timestamptz is null or created_at >= $3)
       and ($4::timestamptz is null or created_at <= $4)
       and ($5::timestamptz is null or (created_at, id) < ($5, $6::text))
       and ($8::text is null or id = $8 or memo = $8 or exists (select 1 from jsonb_each_text(metadata) m where m.value = $8))
     order by created_at desc, id desc
     limit $7`,
    [
      f.merchantId,
      f.status ?? null,
      f.createdGte ?? null,
      f.createdLte ?? null,
      f.after?.createdAt ?? null,
      f.after?.id ?? null,
      f.limit,
      f.search ?? null,
    ],
  );
  return rows.map(toPayment);
}

/**
 * Expires up to `limit` open payments past `expires_at`, oldest first. Rows another transaction
 * holds (a settlement being applied) are skipped, so expiry never waits on nor overrides it.
 */
export async function expireDue(db: Db, now: Date, limit: number): Promise<Payment[]> {
  const { rows } = await db.query<PaymentRow>(
    `update payments set status = 'expired', expired_at = $1, updated_at = $1
     where id in (
       select id from payments where status in ('pending', 'partially_paid') and expires_at <= $1
       order by expires_at limit $2 for update skip locked)
     returning ${COLUMNS}`,
    [now, limit],
  );
  return rows.map(toPayment);
}

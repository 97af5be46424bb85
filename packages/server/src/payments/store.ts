import type { Db } from "../db/pool.js";
import type { Asset } from "../stellar/assets.js";
import type { Memo, MemoType } from "../stellar/memo.js";

export const PAYMENT_STATUSES = ["pending", "partially_paid", "confirmed", "expired", "canceled"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export interface Payment {
  id: string;
  merchantId: string;
  status: PaymentStatus;
  amountStroops: bigint;
  asset: Asset;
  destination: string;
  memo: Memo;
  description: string | null;
  metadata: Record<string, string>;
  expiresAt: Date;
  canceledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface PaymentRow {
  id: string;
  merchant_id: string;
  status: PaymentStatus;
  amount_stroops: string;
  asset_code: string;
  asset_issuer: string | null;
  destination: string;
  memo_type: MemoType;
  memo: string;
  description: string | null;
  metadata: Record<string, string>;
  expires_at: Date;
  canceled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const toPayment = (r: PaymentRow): Payment => ({
  id: r.id,
  merchantId: r.merchant_id,
  status: r.status,
  amountStroops: BigInt(r.amount_stroops),
  asset: { code: r.asset_code, issuer: r.asset_issuer },
  destination: r.destination,
  memo: { type: r.memo_type, value: r.memo },
  description: r.description,
  metadata: r.metadata,
  expiresAt: r.expires_at,
  canceledAt: r.canceled_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export type NewPayment = Omit<Payment, "status" | "canceledAt" | "updatedAt">;

/**
 * Inserts a pending payment; `undefined` when another open payment already uses this destination
 * and memo (`on conflict do nothing` keeps the caller's transaction usable for a retry).
 */
export async function insertPayment(db: Db, p: NewPayment): Promise<Payment | undefined> {
  const { rows } = await db.query<PaymentRow>(
    `insert into payments (id, merchant_id, amount_stroops, asset_code, asset_issuer, destination, memo_type, memo,
       description, metadata, expires_at, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
     on conflict (destination, memo_type, memo) where status in ('pending', 'partially_paid') do nothing
     returning *`,
    [
      p.id,
      p.merchantId,
      p.amountStroops.toString(),
      p.asset.code,
      p.asset.issuer,
      p.destination,
      p.memo.type,
      p.memo.value,
      p.description,
      JSON.stringify(p.metadata),
      p.expiresAt,
      p.createdAt,
    ],
  );
  return rows[0] && toPayment(rows[0]);
}

/** One merchant's payment; another merchant's id reads as absent. `forUpdate` locks the row. */
export async function getPayment(db: Db, merchantId: string, id: string, { forUpdate = false } = {}): Promise<Payment | undefined> {
  const { rows } = await db.query<PaymentRow>(
    `select * from payments where id = $1 and merchant_id = $2${forUpdate ? " for update" : ""}`,
    [id, merchantId],
  );
  return rows[0] && toPayment(rows[0]);
}

export async function setPaymentCanceled(db: Db, id: string, now: Date): Promise<Payment> {
  const { rows } = await db.query<PaymentRow>(
    "update payments set status = 'canceled', canceled_at = $2, updated_at = $2 where id = $1 returning *",
    [id, now],
  );
  return toPayment(rows[0]!);
}

/** A position in the newest-first order: rows strictly after it are older, or as old with a smaller id. */
export interface PaymentPosition {
  createdAt: Date;
  id: string;
}

export interface PaymentFilter {
  merchantId: string;
  status?: PaymentStatus;
  createdGte?: Date;
  createdLte?: Date;
  after?: PaymentPosition;
  limit: number;
}

/** Newest first (`created_at desc, id desc`, served by payments_merchant_created_idx). */
export async function listPayments(db: Db, f: PaymentFilter): Promise<Payment[]> {
  const { rows } = await db.query<PaymentRow>(
    `select * from payments
     where merchant_id = $1
       and ($2::text is null or status = $2)
       and ($3::timestamptz is null or created_at >= $3)
       and ($4::timestamptz is null or created_at <= $4)
       and ($5::timestamptz is null or (created_at, id) < ($5, $6::text))
     order by created_at desc, id desc
     limit $7`,
    [f.merchantId, f.status ?? null, f.createdGte ?? null, f.createdLte ?? null, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit],
  );
  return rows.map(toPayment);
}

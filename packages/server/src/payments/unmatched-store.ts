import type { Db } from "../db/pool.js";
import type { Position } from "../http/pagination.js";
import { exactCreatedAt } from "../http/pagination.js";
import type { Asset } from "../stellar/assets.js";
import type { IncomingOperation } from "../stellar/incoming.js";
import type { ShownMemo } from "../stellar/memo.js";
import type { UnmatchedReason } from "./matching.js";

/** An incoming operation to a merchant account that settled no payment. */
export interface UnmatchedPayment {
  id: string;
  merchantId: string;
  operationId: string;
  transactionHash: string;
  ledger: number;
  closedAt: Date;
  account: string;
  muxedId: string | null;
  memo: ShownMemo;
  asset: Asset;
  amountStroops: bigint;
  from: string;
  reason: UnmatchedReason;
  paymentId: string | null;
  createdAt: Date;
  /** `created_at` to the microsecond, for list cursors. */
  position: Position;
}

interface UnmatchedRow {
  id: string;
  merchant_id: string;
  operation_id: string;
  transaction_hash: string;
  ledger: number;
  closed_at: Date;
  account: string;
  muxed_id: string | null;
  memo_type: ShownMemo["type"];
  memo: string | null;
  asset_code: string;
  asset_issuer: string | null;
  amount_stroops: string;
  from_account: string;
  reason: UnmatchedReason;
  payment_id: string | null;
  created_at: Date;
  created_at_exact: string;
}

const COLUMNS = `unmatched_payments.*, operation_id::text as operation_id, amount_stroops::text as amount_stroops, ${exactCreatedAt()} as created_at_exact`;

const toUnmatched = (r: UnmatchedRow): UnmatchedPayment => ({
  id: r.id,
  merchantId: r.merchant_id,
  operationId: r.operation_id,
  transactionHash: r.transaction_hash,
  ledger: r.ledger,
  closedAt: r.closed_at,
  account: r.account,
  muxedId: r.muxed_id,
  memo: { type: r.memo_type, value: r.memo },
  asset: { code: r.asset_code, issuer: r.asset_issuer },
  amountStroops: BigInt(r.amount_stroops),
  from: r.from_account,
  reason: r.reason,
  paymentId: r.payment_id,
  createdAt: r.created_at,
  position: { createdAt: r.created_at_exact, id: r.id },
});

/** Records `op` as unmatched; `undefined` when the operation was recorded before (a replay). */
export async function insertUnmatched(
  db: Db,
  u: { id: string; merchantId: string; op: IncomingOperation; reason: UnmatchedReason; paymentId: string | null; now: Date },
): Promise<UnmatchedPayment | undefined> {
  const { op } = u;
  const { rows } = await db.query<UnmatchedRow>(
    `insert into unmatched_payments (id, merchant_id, operation_id, transaction_hash, ledger, closed_at, account, muxed_id,
       memo_type, memo, asset_code, asset_issuer, amount_stroops, from_account, reason, payment_id, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
     on conflict (operation_id) do nothing
     returning ${COLUMNS}`,
    [
      u.id,
      u.merchantId,
      op.operationId,
      op.transactionHash,
      op.ledger,
      op.closedAt,
      op.to,
      op.muxedId,
      op.shownMemo.type,
      op.shownMemo.value,
      op.asset.code,
      op.asset.issuer,
      op.amountStroops.toString(),
      op.from,
      u.reason,
      u.paymentId,
      u.now,
    ],
  );
  return rows[0] && toUnmatched(rows[0]);
}

/** One merchant's unmatched payment; another merchant's reads as absent. */
export async function getUnmatched(db: Db, merchantId: string, id: string): Promise<UnmatchedPayment | undefined> {
  const { rows } = await db.query<UnmatchedRow>(`select ${COLUMNS} from unmatched_payments where id = $1 and merchant_id = $2`, [id, merchantId]);
  return rows[0] && toUnmatched(rows[0]);
}

/** Newest first, after `after` (served by unmatched_payments_merchant_created_idx). */
export async function listUnmatched(
  db: Db,
  f: { merchantId: string; reason?: UnmatchedReason; after: Position | undefined; limit: number },
): Promise<UnmatchedPayment[]> {
  const { rows } = await db.query<UnmatchedRow>(
    `select ${COLUMNS} from unmatched_payments
     where merchant_id = $1
       and ($2::text is null or reason = $2)
       and ($3::timestamptz is null or (created_at, id) < ($3, $4::text))
     order by created_at desc, id desc
     limit $5`,
    [f.merchantId, f.reason ?? null, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit],
  );
  return rows.map(toUnmatched);
}

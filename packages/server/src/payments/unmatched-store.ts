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

export interface NewUnmatched {
  id: string;
  merchantId: string;
  op: IncomingOperation;
  reason: UnmatchedReason;
  paymentId: string | null;
  now: Date;
}

/** Records `op` as unmatched; `undefined` when the operation was recorded before (a replay). */
export async function insertUnmatched(db: Db, u: NewUnmatched): Promise<UnmatchedPayment | undefined> {
  return (await insertUnmatchedPayments(db, [u]))[0];
}

/** Records operations as unmatched in one statement; returns those not recorded before (a replay). */
export async function insertUnmatchedPayments(db: Db, list: NewUnmatched[]): Promise<UnmatchedPayment[]> {
  if (list.length === 0) return [];
  const ops = list.map((u) => u.op);
  const { rows } = await db.query<UnmatchedRow>(
    `insert into unmatched_payments (id, merchant_id, operation_id, transaction_hash, ledger, closed_at, account, muxed_id,
       memo_type, memo, asset_code, asset_issuer, amount_stroops, from_account, reason, payment_id, created_at)
     select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::timestamptz[], $7::text[], $8::text[],
       $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::timestamptz[])
     on conflict (operation_id) do nothing
     returning ${COLUMNS}`,
    [
      list.map((u) => u.id),
      list.map((u) => u.merchantId),
      ops.map((op) => op.operationId),
      ops.map((op) => op.transactionHash),
      ops.map((op) => op.ledger),
      ops.map((op) => op.closedAt),
      ops.map((op) => op.to),
      ops.map((op) => op.muxedId),
      ops.map((op) => op.shownMemo.type),
      ops.map((op) => op.shownMemo.value),
      ops.map((op) => op.asset.code),
      ops.map((op) => op.asset.issuer),
      ops.map((op) => op.amountStroops.toString()),
      ops.map((op) => op.from),
      list.map((u) => u.reason),
      list.map((u) => u.paymentId),
      list.map((u) => u.now),
    ],
  );
  return rows.map(toUnmatched);
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

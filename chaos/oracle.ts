/**
 * What every payment of the chaos run must be, computed from the local network's own journal of
 * ledgers (each transaction's signed envelope and close time), not from Lumenpay's tables; then
 * compared with what Lumenpay recorded. The rules are docs/operations.md's "Payment states", for what
 * the driver does: XLM only, unique memos and muxed ids, nothing canceled.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FeeBumpTransaction, MuxedAccount, Networks, TransactionBuilder, type Transaction } from "@stellar/stellar-sdk";
import type pg from "pg";
import { stroopsOf, type CreatedPayment } from "./driver.js";

/** A payment operation into a merchant account, as the ledger has it. */
interface LedgerPayment {
  operationId: string;
  account: string;
  muxedId: string | null;
  memo: string | null;
  stroops: bigint;
  closedAt: Date;
}

const SLACK_MS = 30_000;

/** Every successful native payment into `accounts`, in ledger order, with Horizon's operation ids. */
export async function readLedger(networkDataDir: string, accounts: Set<string>): Promise<LedgerPayment[]> {
  const text = await readFile(path.join(networkDataDir, "local-horizon", "ledger.jsonl"), "utf8");
  const found: LedgerPayment[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const entry = JSON.parse(line) as { ledger: number; closed_at: string; txs: Array<{ envelope: string; successful: boolean }> };
    // A ledger's close time is whole seconds (its header's closeTime); the journal keeps the milliseconds too.
    const closedAt = new Date(Math.floor(Date.parse(entry.closed_at) / 1000) * 1000);
    entry.txs.forEach(({ envelope, successful }, index) => {
      if (!successful) return;
      const decoded = TransactionBuilder.fromXDR(envelope, Networks.STANDALONE);
      const tx: Transaction = decoded instanceof FeeBumpTransaction ? decoded.innerTransaction : decoded;
      const txId = (BigInt(entry.ledger) << 32n) | (BigInt(index + 1) << 12n);
      tx.operations.forEach((op, opIndex) => {
        if (op.type !== "payment" || !op.asset.isNative()) return;
        const muxed = op.destination.startsWith("M") ? MuxedAccount.fromAddress(op.destination, "0") : undefined;
        const account = muxed ? muxed.baseAccount().accountId() : op.destination;
        if (!accounts.has(account)) return;
        found.push({
          operationId: (txId + BigInt(opIndex + 1)).toString(),
          account,
          muxedId: muxed ? muxed.id() : null,
          memo: tx.memo.type === "id" ? String(tx.memo.value) : null,
          stroops: stroopsOf(op.amount),
          closedAt,
        });
      });
    });
  }
  return found;
}

interface Expected {
  status: "confirmed" | "expired";
  receivedStroops: bigint;
  confirmedAt: Date | null;
  /** Settlements by operation id: late or not. */
  settlements: Map<string, boolean>;
}

/** The state each payment must end in (all are past their expiry when this is asked), and the operations that pay none. */
export function expectedStates(payments: CreatedPayment[], ledger: LedgerPayment[]): { states: Map<string, Expected>; unmatched: Set<string> } {
  const byMuxed = new Map(payments.filter((p) => p.muxed_id).map((p) => [`${p.destination_account}/${p.muxed_id}`, p]));
  const byMemo = new Map(payments.filter((p) => p.memo).map((p) => [`${p.destination_account}/${p.memo}`, p]));
  const states = new Map<string, Expected>(
    payments.map((p) => [p.id, { status: "expired", receivedStroops: 0n, confirmedAt: null, settlements: new Map() }]),
  );
  const unmatched = new Set<string>();
  for (const op of ledger) {
    const payment = op.muxedId !== null ? byMuxed.get(`${op.account}/${op.muxedId}`) : op.memo !== null ? byMemo.get(`${op.account}/${op.memo}`) : undefined;
    const eligible = payment && op.closedAt.getTime() >= Date.parse(payment.created_at) - SLACK_MS;
    if (!payment || !eligible) {
      unmatched.add(op.operationId);
      continue;
    }
    const state = states.get(payment.id)!;
    const amount = stroopsOf(payment.amount);
    const onTime = op.closedAt.getTime() <= Date.parse(payment.expires_at) && state.receivedStroops < amount;
    state.settlements.set(op.operationId, !onTime);
    if (!onTime) continue;
    state.receivedStroops += op.stroops;
    if (state.receivedStroops >= amount) {
      state.status = "confirmed";
      state.confirmedAt = op.closedAt;
    }
  }
  return { states, unmatched };
}

export interface Verdict {
  payments: number;
  /** Operations into merchant accounts that pay no payment. */
  unmatched: number;
  byStatus: Record<string, number>;
  misstated: string[];
  confirmationEvents: string[];
  wrongSettlements: string[];
  unmatchedMissing: string[];
  unmatchedExtra: string[];
  extraPayments: string[];
}

/** Compares the merchant's rows in Lumenpay's tables with the expectations: every difference is named. */
export async function compare(db: pg.Pool, merchantId: string, payments: CreatedPayment[], ledger: LedgerPayment[]): Promise<Verdict> {
  const { states, unmatched } = expectedStates(payments, ledger);
  const rows = (await db.query<{ id: string; status: string; received: string; confirmed_at: Date | null }>(
    "select id, status, amount_received_stroops::text as received, confirmed_at from payments where merchant_id = $1",
    [merchantId],
  )).rows;
  const settlements = (await db.query<{ operation_id: string; payment_id: string; late: boolean }>(
    "select operation_id::text, payment_id, late from payment_settlements s join payments p on p.id = s.payment_id where p.merchant_id = $1",
    [merchantId],
  )).rows;
  const confirmedEvents = (await db.query<{ payment_id: string; n: number }>(
    "select payment_id, count(*)::int as n from events where merchant_id = $1 and type = 'payment.confirmed' group by payment_id",
    [merchantId],
  )).rows;
  const recordedUnmatched = new Set((await db.query<{ operation_id: string }>("select operation_id::text from unmatched_payments where merchant_id = $1", [merchantId])).rows.map((r) => r.operation_id));

  const verdict: Verdict = {
    payments: payments.length,
    unmatched: unmatched.size,
    byStatus: {},
    misstated: [],
    confirmationEvents: [],
    wrongSettlements: [],
    unmatchedMissing: [...unmatched].filter((id) => !recordedUnmatched.has(id)),
    unmatchedExtra: [...recordedUnmatched].filter((id) => !unmatched.has(id)),
    extraPayments: [],
  };
  const stored = new Map(rows.map((r) => [r.id, r]));
  for (const [id, expected] of states) {
    verdict.byStatus[expected.status] = (verdict.byStatus[expected.status] ?? 0) + 1;
    const row = stored.get(id);
    const same =
      row &&
      row.status === expected.status &&
      BigInt(row.received) === expected.receivedStroops &&
      (row.confirmed_at?.getTime() ?? null) === (expected.confirmedAt?.getTime() ?? null);
    if (!same) {
      verdict.misstated.push(
        `${id}: expected ${expected.status} ${expected.receivedStroops} ${expected.confirmedAt?.toISOString() ?? "-"}, ` +
          `recorded ${row ? `${row.status} ${row.received} ${row.confirmed_at?.toISOString() ?? "-"}` : "nothing"}`,
      );
    }
  }
  for (const row of rows) if (!states.has(row.id)) verdict.extraPayments.push(`${row.id} (${row.status})`);
  const expectedSettlements = new Map([...states].flatMap(([id, s]) => [...s.settlements].map(([op, late]) => [op, { id, late }] as const)));
  for (const s of settlements) {
    const expected = expectedSettlements.get(s.operation_id);
    if (!expected || expected.id !== s.payment_id || expected.late !== s.late) {
      verdict.wrongSettlements.push(`operation ${s.operation_id} settled ${s.payment_id}${s.late ? " late" : ""}, expected ${expected ? `${expected.id}${expected.late ? " late" : ""}` : "none"}`);
    }
    expectedSettlements.delete(s.operation_id);
  }
  for (const [op, { id }] of expectedSettlements) verdict.wrongSettlements.push(`operation ${op} never settled ${id}`);
  const confirmedCount = new Map(confirmedEvents.map((r) => [r.payment_id, r.n]));
  for (const [id, expected] of states) {
    const n = confirmedCount.get(id) ?? 0;
    if (n !== (expected.status === "confirmed" ? 1 : 0)) verdict.confirmationEvents.push(`${id}: ${n} payment.confirmed events, payment ${expected.status}`);
  }
  return verdict;
}

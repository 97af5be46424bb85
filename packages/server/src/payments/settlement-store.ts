import type { Db } from "../db/pool.js";
import { envelopeOf, outboxStatement, type NewEvent } from "../events/outbox.js";
import type { LockedPaymentRow } from "./matching.js";
import { toPayment, type Payment, type Settlement } from "./store.js";

/**
 * The SQL of applying a page of operations to payments (settlement.ts): a few statements per page,
 * each covering every record of the page, instead of several per record.
 */

/** A payment as settlement moves it on: its row and the sequence of its last event. */
export interface PaymentState {
  payment: Payment;
  eventSequence: number;
}

/**
 * The states of the payments matching locked (`lockEligible`), and which of `operationIds` settled
 * a payment already, in one statement. It runs once the locks are held, so the settlements include
 * whatever another applier committed while this transaction waited for them.
 */
export async function readSettlements(
  db: Db,
  locked: Map<string, LockedPaymentRow>,
  operationIds: string[],
): Promise<{ states: Map<string, PaymentState>; settled: Set<string> }> {
  const states = new Map(
    [...locked.values()].map(({ event_sequence, ...row }) => [row.id, { payment: toPayment({ ...row, settlements: [] }), eventSequence: event_sequence }]),
  );
  if (locked.size === 0 && operationIds.length === 0) return { states, settled: new Set() };
  const { rows } = await db.query<SettlementRow>(
    `select payment_id, operation_id::text, transaction_hash, ledger, closed_at, amount_stroops::text, from_account, late
     from payment_settlements where payment_id = any ($1::text[]) or operation_id = any ($2::bigint[])
     order by operation_id`,
    [[...locked.keys()], operationIds],
  );
  for (const r of rows) {
    states.get(r.payment_id)?.payment.settlements.push({
      operationId: r.operation_id,
      transactionHash: r.transaction_hash,
      ledger: r.ledger,
      closedAt: r.closed_at,
      amountStroops: BigInt(r.amount_stroops),
      from: r.from_account,
      late: r.late,
    });
  }
  return { states, settled: new Set(rows.map((r) => r.operation_id)) };
}

interface SettlementRow {
  payment_id: string;
  operation_id: string;
  transaction_hash: string;
  ledger: number;
  closed_at: Date;
  amount_stroops: string;
  from_account: string;
  late: boolean;
}

export interface SettlementWrites {
  /** New settlements: the caller has checked, under the payments' locks, that none is recorded yet. */
  settlements: Array<Settlement & { paymentId: string }>;
  /** The payments they moved on, as they end up. */
  payments: PaymentState[];
  /** The events telling it (and any others of the page), with their deliveries. */
  events: NewEvent[];
  now: Date;
}

// The settlements have no `on conflict` clause: each operation settles at most one payment, once,
// and one recorded meanwhile despite the locks fails the whole statement rather than count twice.
// Each list is one JSON parameter: serialized natively, where node-postgres escapes array
// literals in JavaScript (most of the statement's time, for a page of event bodies).
const WRITE_SETTLEMENTS = outboxStatement(
  `insert into events (id, merchant_id, type, payment_id, sequence, body, created_at)
   select id, merchant_id, type, payment_id, sequence, body, $4
   from json_to_recordset($1::json) as e(id text, merchant_id text, type text, payment_id text, sequence int, body text)
   on conflict (id) do nothing
   returning id, merchant_id, type, created_at`,
  {
    merchant: "event.merchant_id",
    type: "event.type",
    now: "event.created_at",
    before: `settled as (
      insert into payment_settlements
        (operation_id, payment_id, transaction_hash, ledger, closed_at, amount_stroops, from_account, late, created_at)
      select operation_id, payment_id, transaction_hash, ledger, closed_at, amount_stroops, from_account, late, $4
      from json_to_recordset($2::json) as s(operation_id bigint, payment_id text, transaction_hash text, ledger int,
        closed_at timestamptz, amount_stroops bigint, from_account text, late boolean)
    ),
    moved as (
      update payments set status = v.status, amount_received_stroops = v.received, confirmed_at = v.confirmed_at,
        expired_at = v.expired_at, updated_at = $4, event_sequence = v.event_sequence
      from json_to_recordset($3::json)
        as v(id text, status text, received numeric, confirmed_at timestamptz, expired_at timestamptz, event_sequence int)
      where payments.id = v.id
    )`,
  },
);

/**
 * Records a page's settlements, the payments' new states and the events (the outbox), in one
 * statement: they commit or roll back together, with the cursor the caller advances in the same
 * transaction. Every event is dated `now`.
 */
export async function writeSettlements(db: Db, w: SettlementWrites): Promise<void> {
  if (w.events.length === 0 && w.settlements.length === 0) return;
  const events = w.events.map((e) => {
    const { id, body } = envelopeOf(e);
    return { id, merchant_id: e.merchantId, type: e.type, payment_id: e.payment?.id ?? null, sequence: e.payment?.sequence ?? null, body };
  });
  const settlements = w.settlements.map((s) => ({
    operation_id: s.operationId,
    payment_id: s.paymentId,
    transaction_hash: s.transactionHash,
    ledger: s.ledger,
    closed_at: s.closedAt,
    amount_stroops: s.amountStroops.toString(),
    from_account: s.from,
    late: s.late,
  }));
  const payments = w.payments.map(({ payment: p, eventSequence }) => ({
    id: p.id,
    status: p.status,
    received: p.amountReceivedStroops.toString(),
    confirmed_at: p.confirmedAt,
    expired_at: p.expiredAt,
    event_sequence: eventSequence,
  }));
  await db.query(WRITE_SETTLEMENTS, [JSON.stringify(events), JSON.stringify(settlements), JSON.stringify(payments), w.now]);
}

import type { Merchant } from "../merchants/store.js";
import { paymentOut, type PaymentLinks, type PaymentOut, type SettlementOut } from "../payments/service.js";
import type { Payment } from "../payments/store.js";
import { formatAmount } from "../stellar/amount.js";

/**
 * What the checkout shows for a payment at a moment: the API's payment object plus what the customer
 * needs on top (the remainder and its SEP-7 URI, the time left). Pure, so the page, the status JSON
 * and the event stream all show the same thing.
 */

export const CHECKOUT_STATES = ["pending", "partially_paid", "paid", "expired", "canceled"] as const;
export type CheckoutState = (typeof CHECKOUT_STATES)[number];

export interface CheckoutView {
  payment: PaymentOut;
  merchantName: string;
  state: CheckoutState;
  /** What is still to pay, a decimal string ("0" once paid). */
  remaining: string;
  /** The SEP-7 request for `remaining`: the whole amount until something arrives. */
  payUri: string;
  secondsLeft: number;
  /** The settlement that completed the amount, once paid. */
  completedBy: SettlementOut | undefined;
  /** Changes exactly when what the page shows changes: the event stream sends only then. */
  version: string;
}

/** The SEP-1 organisation name when the merchant set one (what their stellar.toml shows), else their account name. */
export const merchantDisplayName = (merchant: Merchant) => merchant.org.name ?? merchant.name;

/**
 * The status the customer sees. A payment the expiry job has not reached yet is already expired to
 * them (it will not wait for a payment sent now); a confirmed one is paid whatever happened before,
 * since the close time of its operations decided it.
 */
function stateOf(p: Payment, now: Date): CheckoutState {
  if (p.status === "confirmed") return "paid";
  if (p.status === "expired" || p.status === "canceled") return p.status;
  return now >= p.expiresAt ? "expired" : p.status;
}

export function checkoutView(p: Payment, merchantName: string, now: Date, links: PaymentLinks): CheckoutView {
  const payment = paymentOut(p, links);
  const remainingStroops = p.amountReceivedStroops >= p.amountStroops ? 0n : p.amountStroops - p.amountReceivedStroops;
  const state = stateOf(p, now);
  const onTime = payment.settlements.filter((s) => !s.late);
  return {
    payment,
    merchantName,
    state,
    remaining: formatAmount(remainingStroops),
    // The same request for what is left: paymentOut builds every SEP-7 URI, so both QR codes agree.
    payUri: remainingStroops === p.amountStroops || remainingStroops === 0n ? payment.sep7_uri : paymentOut({ ...p, amountStroops: remainingStroops }, links).sep7_uri,
    secondsLeft: Math.max(0, Math.ceil((p.expiresAt.getTime() - now.getTime()) / 1000)),
    completedBy: state === "paid" ? onTime.at(-1) : undefined,
    version: `${state}.${p.amountReceivedStroops}.${p.updatedAt.getTime()}`,
  };
}

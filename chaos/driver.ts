/**
 * The customers and the merchant of the chaos run: payments created through the API (either instance,
 * retried with the same Idempotency-Key when one is down) and paid on the local network with real
 * signed transactions — exactly, partly, over, to M addresses, after expiry, with a memo nobody issued,
 * or not at all.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Account, Asset, Keypair, Memo, Networks, Operation, TransactionBuilder } from "@stellar/stellar-sdk";

export type Kind = "exact" | "partial" | "over" | "muxed" | "late" | "unknown_memo" | "unpaid";
/** One payment in twenty of each kind but exact (half of all). */
const KINDS: Kind[] = ["exact", "exact", "exact", "exact", "exact", "exact", "exact", "exact", "exact", "exact",
  "partial", "partial", "over", "muxed", "muxed", "muxed", "late", "unknown_memo", "unpaid", "exact"];

export interface CreatedPayment {
  id: string;
  kind: Kind;
  amount: string;
  destination: string;
  destination_account: string;
  memo: string | null;
  muxed_id: string | null;
  created_at: string;
  expires_at: string;
}

/** One API call's outcome, for the error rate during each fault. */
export interface ApiAttempt {
  at: number;
  instance: string;
  ok: boolean;
  /** The HTTP status, or why there was none (the error's code: ECONNREFUSED, TimeoutError). */
  outcome: string;
}

/** Why a request got no answer, in one word. */
export const failureOf = (error: unknown): string => {
  const e = error as { name?: string; cause?: { code?: string } };
  return e.cause?.code ?? e.name ?? "error";
};

export interface DriverOptions {
  apiUrls: string[];
  apiKey: string;
  horizonUrl: string;
  merchantAccounts: string[];
  payments: number;
  payers: number;
  expiresInS: number;
  /** Told how many payments (created or only paid, for unknown memos) have been started. */
  progress: (created: number) => void;
}

export interface DriverResult {
  created: CreatedPayment[];
  attempts: ApiAttempt[];
  /** Transactions submitted (each once the network said anything but a timeout). */
  submitted: number;
}

const PASSPHRASE = Networks.STANDALONE;

async function friendbot(horizonUrl: string, account: string): Promise<void> {
  const res = await fetch(`${horizonUrl}/friendbot?addr=${account}`);
  if (!res.ok) throw new Error(`friendbot for ${account} answered ${res.status}: ${await res.text()}`);
}

/** Funds `accounts` on the local network (merchant accounts must exist to be paid). */
export async function fund(horizonUrl: string, accounts: string[]): Promise<void> {
  for (const account of accounts) await friendbot(horizonUrl, account);
}

async function sequenceOf(horizonUrl: string, account: string): Promise<string> {
  for (;;) {
    try {
      const res = await fetch(`${horizonUrl}/accounts/${account}`, { signal: AbortSignal.timeout(5000) });
      if (res.ok) return ((await res.json()) as { sequence: string }).sequence;
    } catch {
      // The network may be paused: ask again.
    }
    await sleep(500);
  }
}

/** A customer's account paying one transaction at a time, resubmitting the same envelope until the network answers. */
class Payer {
  private account: Account | undefined;
  constructor(
    private readonly keypair: Keypair,
    private readonly horizonUrl: string,
  ) {}

  static async create(horizonUrl: string): Promise<Payer> {
    const keypair = Keypair.random();
    await friendbot(horizonUrl, keypair.publicKey());
    return new Payer(keypair, horizonUrl);
  }

  async pay(destination: string, amount: string, memo: string | null): Promise<void> {
    this.account ??= new Account(this.keypair.publicKey(), await sequenceOf(this.horizonUrl, this.keypair.publicKey()));
    const builder = new TransactionBuilder(this.account, { fee: "100", networkPassphrase: PASSPHRASE })
      .addOperation(Operation.payment({ destination, asset: Asset.native(), amount }))
      .setTimeout(0);
    if (memo !== null) builder.addMemo(Memo.id(memo));
    const tx = builder.build();
    tx.sign(this.keypair);
    const body = new URLSearchParams({ tx: tx.toEnvelope().toXDR("base64") });
    for (;;) {
      try {
        const res = await fetch(`${this.horizonUrl}/transactions`, { method: "POST", body, signal: AbortSignal.timeout(5000) });
        if (res.ok) return;
        // Most likely an earlier submission of this envelope was applied while we waited (tx_bad_seq):
        // the ledger, not this driver, says what happened; start again from the account's sequence.
        await res.body?.cancel();
        this.account = undefined;
        return;
      } catch {
        // Paused or restarting: the same envelope again, so it is applied at most once.
        await sleep(1000);
      }
    }
  }
}

/** Lumens as a decimal string ↔ stroops; the chaos run's own, so its oracle shares no code with what it checks. */
export const stroopsOf = (amount: string) => {
  const [whole, fraction = ""] = amount.split(".");
  return BigInt(whole!) * 10_000_000n + BigInt(fraction.padEnd(7, "0"));
};
const amountOf = (stroops: bigint) => `${stroops / 10_000_000n}.${(stroops % 10_000_000n).toString().padStart(7, "0")}`;

/** What the customer pays for a payment of `kind` (the driver's intent; the oracle reads the ledger instead). */
function amountToPay(kind: Kind, amount: string): string {
  const stroops = stroopsOf(amount);
  if (kind === "partial") return amountOf(stroops / 2n);
  if (kind === "over") return amountOf(stroops + 10_000_000n);
  return amount;
}

/** Runs the payments, `payers` at a time, each its own account; late ones are paid by one more after their expiry. */
export async function drive(options: DriverOptions): Promise<DriverResult> {
  const result: DriverResult = { created: [], attempts: [], submitted: 0 };
  let next = 0;
  let turn = 0;
  const late: Array<{ due: number; payment: CreatedPayment }> = [];
  let creating = true;

  const create = async (kind: Kind): Promise<CreatedPayment> => {
    const key = `chaos-${next}-${Math.random()}`;
    const cents = 10 + Math.floor(Math.random() * 190);
    const body = JSON.stringify({ amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`, asset: "XLM", muxed: kind === "muxed", expires_in: options.expiresInS });
    for (;;) {
      const url = options.apiUrls[turn++ % options.apiUrls.length]!;
      try {
        const res = await fetch(`${url}/v1/payments`, {
          method: "POST",
          headers: { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json", "idempotency-key": key },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        result.attempts.push({ at: Date.now(), instance: url, ok: res.status === 201, outcome: String(res.status) });
        if (res.status === 201) return { ...((await res.json()) as Omit<CreatedPayment, "kind">), kind };
        await res.body?.cancel();
      } catch (error) {
        result.attempts.push({ at: Date.now(), instance: url, ok: false, outcome: failureOf(error) });
      }
      await sleep(100);
    }
  };

  const worker = async (payer: Payer) => {
    while (next < options.payments) {
      const kind = KINDS[next++ % KINDS.length]!;
      options.progress(next);
      if (kind === "unknown_memo") {
        const account = options.merchantAccounts[next % options.merchantAccounts.length]!;
        // An id memo no payment was given (generated memos are random 64-bit numbers).
        await payer.pay(account, "1.2345678", String(1_000_000 + next));
        result.submitted++;
        continue;
      }
      const payment = await create(kind);
      result.created.push(payment);
      if (kind === "unpaid") continue;
      if (kind === "late") {
        late.push({ due: Date.parse(payment.expires_at) + 3000, payment });
        continue;
      }
      await payer.pay(payment.destination, amountToPay(kind, payment.amount), payment.memo);
      result.submitted++;
    }
  };

  // One late payment in twenty, each waiting out its expiry: a tenth of the customers pay them.
  const payLate = async (payer: Payer) => {
    while (creating || late.length > 0) {
      const first = late[0];
      if (!first || first.due > Date.now()) {
        await sleep(200);
        continue;
      }
      late.shift();
      await payer.pay(first.payment.destination, first.payment.amount, first.payment.memo);
      result.submitted++;
    }
  };
  const customers = (n: number) => Promise.all(Array.from({ length: n }, () => Payer.create(options.horizonUrl)));
  const payers = await customers(options.payers);
  const latePayers = await customers(Math.max(2, Math.ceil(options.payers / 10)));
  const lateDone = Promise.all(latePayers.map(payLate));
  await Promise.all(payers.map(worker));
  creating = false;
  await lateDone;
  return result;
}

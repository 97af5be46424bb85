import { Keypair, StrKey, Transaction, WebAuth } from "@stellar/stellar-sdk";
import type { Config } from "../config.js";
import { transaction, type Db, type Pool } from "../db/pool.js";
import { badRequest } from "../http/errors.js";
import { accountInUse, attachAccounts, MAX_ACCOUNTS } from "./service.js";
import * as store from "./store.js";
import type { Merchant } from "./store.js";

/**
 * Proof of control of a Stellar account, SEP-10 style: Lumenpay hands out a challenge transaction
 * (sequence 0, never valid on the network) whose first operation is a manage_data with the account
 * as its source; signing it with the account's key proves control. Each challenge is stored with
 * the merchant it was issued to and can be used once, before it expires.
 */

/** How long a challenge can be signed and returned. */
export const CHALLENGE_TTL_S = 15 * 60;

export interface AccountChallengeOut {
  object: "account_challenge";
  account: string;
  /** Base64 XDR of the transaction envelope to sign with the account's key. */
  transaction: string;
  network_passphrase: string;
  /** The key that signed the challenge (SIGNING_KEY in stellar.toml when WEBHOOK_SIGNING_SEED is set). */
  server_key: string;
  expires_at: string;
}

/** The name SEP-10 gives the challenge's first operation is `<home domain> auth`, at most 64 bytes. */
function homeDomain(config: Config): string {
  const host = new URL(config.publicBaseUrl).host;
  return host.length <= 59 ? host : "lumenpay";
}

const invalidChallenge = (message: string) => badRequest("invalid_challenge", message, "transaction");

/** A challenge for `account`; 409 when another merchant owns it already. */
export async function createAccountChallenge(
  pool: Pool,
  merchant: Merchant,
  account: string,
  { config, now }: { config: Config; now: Date },
): Promise<AccountChallengeOut> {
  if (!StrKey.isValidEd25519PublicKey(account)) throw badRequest("invalid_account", "account must be a valid Stellar account (G…).", "account");
  const owner = await store.accountOwner(pool, account);
  if (owner !== undefined && owner !== merchant.id) throw accountInUse(account, "account");
  // The platform key when there is one (wallets can check it against stellar.toml); else a key used once.
  const server = config.webhookSigningSeed ? Keypair.fromSecret(config.webhookSigningSeed) : Keypair.random();
  const domain = homeDomain(config);
  const xdr = WebAuth.buildChallengeTx(server, account, domain, CHALLENGE_TTL_S, config.stellar.networkPassphrase, domain);
  const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_S * 1000);
  await store.insertAccountChallenge(pool, { nonce: challengeNonce(xdr, config)!, merchantId: merchant.id, account, serverKey: server.publicKey(), expiresAt, now });
  return {
    object: "account_challenge",
    account,
    transaction: xdr,
    network_passphrase: config.stellar.networkPassphrase,
    server_key: server.publicKey(),
    expires_at: expiresAt.toISOString(),
  };
}

/** The random value of the challenge's first operation, which names the stored challenge; undefined if there is none. */
function challengeNonce(xdr: string, config: Config): string | undefined {
  try {
    const op = new Transaction(xdr, config.stellar.networkPassphrase).operations[0];
    return op?.type === "manageData" && op.value ? Buffer.from(op.value).toString("base64") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Attaches the account a signed challenge proves control of, and marks it verified. The challenge
 * must be one issued to this merchant, unexpired and unused, signed by Lumenpay for this network,
 * and signed by the account's master key.
 */
export async function attachProvenAccount(
  pool: Pool,
  merchant: Merchant,
  signedXdr: string,
  { config, now }: { config: Config; now: Date },
): Promise<Merchant> {
  const nonce = challengeNonce(signedXdr, config);
  if (nonce === undefined) throw invalidChallenge("transaction is not a challenge transaction (base64 XDR from POST /v1/merchant/accounts/challenge).");
  const challenge = await store.getAccountChallenge(pool, merchant.id, nonce);
  if (!challenge) throw invalidChallenge("This challenge was not issued to you, or has been used already.");
  if (challenge.expiresAt <= now) throw badRequest("challenge_expired", "This challenge has expired; ask for a new one.", "transaction");
  const domain = homeDomain(config);
  let tx: Transaction;
  try {
    ({ tx } = WebAuth.readChallengeTx(signedXdr, challenge.serverKey, config.stellar.networkPassphrase, domain, domain));
  } catch (error) {
    throw invalidChallenge(`The challenge was altered or is not for this network: ${(error as Error).message}.`);
  }
  if (!WebAuth.verifyTxSignedBy(tx, challenge.account)) {
    throw badRequest("challenge_not_signed", `The challenge is not signed by ${challenge.account}'s key on this network.`, "transaction");
  }
  return transaction(pool, async (db: Db) => {
    // Used once: of two concurrent submissions, the second finds nothing to consume.
    if (!(await store.consumeAccountChallenge(db, nonce))) throw invalidChallenge("This challenge has been used already.");
    const current = (await store.getMerchant(db, merchant.id))!;
    if (!current.accounts.includes(challenge.account)) {
      if (current.accounts.length >= MAX_ACCOUNTS) throw badRequest("invalid_accounts", `A merchant has at most ${MAX_ACCOUNTS} accounts.`, "transaction");
      await attachAccounts(db, merchant.id, [...current.accounts, challenge.account], now);
      await store.notifyMerchantChanged(db, merchant.id);
    }
    await store.markAccountVerified(db, merchant.id, challenge.account, now);
    return (await store.getMerchant(db, merchant.id))!;
  });
}

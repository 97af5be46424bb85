import { Account, Asset, type Keypair, type Memo, Operation, StrKey, TimeoutInfinite, type Transaction, TransactionBuilder, type xdr } from "@stellar/stellar-sdk";
import { decodeTransaction } from "./decode.js";
import { formatStroops, parseStroops } from "./format.js";
import type { LocalNetwork, Submission } from "./network.js";
import { badRequest, LocalHorizonError } from "./problems.js";
import { BASE_FEE } from "./state.js";

/** What testnet's friendbot gives a new account. */
export const FRIENDBOT_LUMENS = "10000";
/** What an issuer account created by a mint gets, to pay its fees. */
const ISSUER_LUMENS = "100";

/**
 * A one-operation transaction from `source` at its current sequence number; signed when `source` is a
 * keypair, unsigned when it is only an address (the mint's issuer, whose secret nobody here has).
 */
export function buildTransaction(network: LocalNetwork, source: Keypair | string, operation: xdr.Operation, memo?: Memo): Transaction {
  const id = typeof source === "string" ? source : source.publicKey();
  const account = network.state.accounts.get(id);
  if (!account) throw new TypeError(`Account ${id} does not exist; fund it first.`);
  let builder = new TransactionBuilder(new Account(id, account.sequence.toString()), {
    fee: BASE_FEE.toString(),
    networkPassphrase: network.options.networkPassphrase,
  });
  builder = builder.addOperation(operation).setTimeout(TimeoutInfinite);
  if (memo) builder = builder.addMemo(memo);
  const tx = builder.build();
  if (typeof source !== "string") tx.sign(source);
  return tx;
}

const invalid = (field: string, reason: string) => new LocalHorizonError(badRequest(field, `${field}: ${reason}`));

function accountParam(params: URLSearchParams): string {
  const addr = params.get("addr") ?? "";
  if (!StrKey.isValidEd25519PublicKey(addr)) throw invalid("addr", "must be a G… account");
  return addr;
}

/**
 * `GET /friendbot?addr=G…`, as on testnet: a create_account of 10 000 lumens from the root account. Like
 * testnet's, it fails (`op_already_exists`) for an account that already exists.
 */
export function friendbot(network: LocalNetwork, params: URLSearchParams): Promise<Submission> {
  const operation = Operation.createAccount({ destination: accountParam(params), startingBalance: FRIENDBOT_LUMENS });
  return network.submit(buildTransaction(network, network.root, operation));
}

function assetParam(params: URLSearchParams): Asset {
  const text = params.get("asset") ?? "";
  if (text === "XLM" || text === "native") return Asset.native();
  const [code = "", issuer = "", ...rest] = text.split(":");
  try {
    if (rest.length > 0) throw new Error("too many parts");
    return new Asset(code, issuer);
  } catch {
    throw invalid("asset", "must be XLM or CODE:ISSUER");
  }
}

function amountParam(params: URLSearchParams): string {
  let stroops: bigint;
  try {
    stroops = parseStroops(params.get("amount") ?? "");
  } catch {
    stroops = 0n;
  }
  if (stroops <= 0n) throw invalid("amount", "must be a positive amount with at most 7 decimals");
  return formatStroops(stroops);
}

/**
 * `POST /_local/mint` (form fields `addr`, `asset`, `amount`): exists only on the local Horizon, so that a
 * payer can hold any asset. Lumens are a payment from the root account. An issued asset is a payment from
 * its issuer, recorded without the issuer's signature (nobody here has its secret): the one transaction
 * the local network takes unsigned. An issuer the network has not seen is created first.
 */
export async function mint(network: LocalNetwork, params: URLSearchParams): Promise<Submission> {
  const destination = accountParam(params);
  const asset = assetParam(params);
  const amount = amountParam(params);
  const payment = Operation.payment({ destination, asset, amount });
  if (asset.isNative()) return network.submit(buildTransaction(network, network.root, payment));
  const issuer = asset.getIssuer();
  if (issuer === destination) throw invalid("addr", "an issuer holds its own asset without minting");
  const passphrase = network.options.networkPassphrase;
  // Both go into the open ledger before it can close, so the mint takes one ledger even for a new issuer.
  if (!network.state.accounts.has(issuer)) {
    const create = Operation.createAccount({ destination: issuer, startingBalance: ISSUER_LUMENS });
    const created = network.include(decodeTransaction(buildTransaction(network, network.root, create), passphrase));
    if (created.kind === "rejected") return created;
    if (created.problem) {
      await network.settle();
      return created;
    }
  }
  const minted = network.include(decodeTransaction(buildTransaction(network, issuer, payment), passphrase), { trustSignatures: true });
  if (minted.kind === "included") await network.settle();
  return minted;
}

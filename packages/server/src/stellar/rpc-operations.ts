import { Address, Asset as SdkAsset, FeeBumpTransaction, MuxedAccount, scValToNative, StrKey, TransactionBuilder, xdr } from "@stellar/stellar-sdk";
import { type Asset, assetLabel, sameAsset } from "./assets.js";
import type { IncomingOperation } from "./incoming.js";
import { type HorizonMemo, memoFromHorizon, memoShown } from "./memo.js";
import type { EventFilter, RpcEvent, RpcTransaction } from "./rpc-client.js";

/**
 * Payments into merchant accounts from Stellar RPC's CAP-67 events, as the same `IncomingOperation`s
 * Horizon gives (incoming.ts). The Stellar Asset Contract's `transfer` (["transfer", from, to, asset])
 * and `mint` (["mint", to, asset], the issuer paying) say who received how much of what, and where
 * (ledger, transaction, operation), but not everything a payment is matched on:
 *
 * - their `to_muxed_id` is a u64 for an M destination's id and for an id memo alike, bytes for hash and
 *   return memos alike; when the destination is muxed the memo is not in the event at all;
 * - create_account (which sets `createsAccount`), account_merge (ignored by Horizon ingestion), a
 *   payment, and an invoke_host_function calling the asset contract all make the same native transfer;
 * - even a credit asset's bare amount (no memo, no muxed id) may be the account's offer crossed by
 *   someone's offer or path payment, a claimable balance claimed or a contract call, all of which
 *   Horizon ingestion ignores.
 *
 * So every credit event to a watched account needs its transaction (getTransaction): the envelope gives
 * the operation's type, destination and source and the memo, which go through the same memo code as
 * Horizon's. `needsTransaction` is false only for events that can never be a payment in (fees, burns,
 * events of failed calls). Events of one transaction share one fetch.
 *
 * What Horizon lists and RPC cannot show: payments out of the account (`not_incoming`; no credit
 * event) and failed transactions (`transaction_failed`; they keep only their fee event). RPC alone
 * sees credits Horizon does not list as payments (trades, claims, pool withdrawals): all ignored.
 * Not covered: a payment to the issuer of the asset paid is a `burn`, which names no recipient; a
 * merchant account receiving an asset it issues would need burn filters.
 */

// stellar-rpc's getEvents limits (also enforced by local-rpc/filters.ts).
const MAX_FILTERS_PER_REQUEST = 5;
const MAX_TOPICS_PER_FILTER = 5;
const MAX_CONTRACT_IDS_PER_FILTER = 5;
const PATTERNS_PER_REQUEST = MAX_FILTERS_PER_REQUEST * MAX_TOPICS_PER_FILTER;

// Deriving a contract id hashes its preimage; the cache is bounded because event assets come from the wire.
const contractIds = new Map<string, string>();
const MAX_CACHED_CONTRACT_IDS = 1024;

/** The C… id of `asset`'s Stellar Asset Contract on the network with `networkPassphrase`. */
export function sacContractId(asset: Asset, networkPassphrase: string): string {
  const key = `${networkPassphrase}\n${assetLabel(asset)}`;
  let id = contractIds.get(key);
  if (!id) {
    id = (asset.issuer === null ? SdkAsset.native() : new SdkAsset(asset.code, asset.issuer)).contractId(networkPassphrase);
    if (contractIds.size >= MAX_CACHED_CONTRACT_IDS) contractIds.clear();
    contractIds.set(key, id);
  }
  return id;
}

const symbolTopic = (name: string) => xdr.ScVal.scvSymbol(name).toXDR("base64");
const addressTopic = (account: string) => new Address(account).toScVal().toXDR("base64");

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/** Assets in groups of at most 5 (one filter's contract ids); no assets: one group matching any contract. */
function assetGroups(assets: readonly Asset[]): Array<Asset[] | null> {
  const unique = [...new Map(assets.map((asset) => [assetLabel(asset), asset])).values()];
  return unique.length === 0 ? [null] : chunks(unique, MAX_CONTRACT_IDS_PER_FILTER);
}

/**
 * Transfers to an account, plus mints to it unless every asset of the group is native: lumens are
 * minted only by inflation (gone since protocol 12), which Horizon does not list as a payment anyway.
 */
const patternsPerAccount = (group: Asset[] | null) => (group?.every((asset) => asset.issuer === null) ? 1 : 2);

/**
 * The `filters` of each getEvents request that together find every transfer and mint to `accounts`
 * of `assets`, packed into as few requests as stellar-rpc's limits allow: each filter holds up to 5
 * contract ids and 5 topic patterns, each request 5 filters, so 25 patterns. With no assets the filters
 * name no contract: every asset's payments, as Horizon lists them (other contracts' look-alike events
 * are then sorted out by `incomingFromEvent` as unsupported operations).
 */
export function eventFilters(accounts: readonly string[], assets: readonly Asset[], networkPassphrase: string): EventFilter[][] {
  const requests: EventFilter[][] = [];
  for (const group of assetGroups(assets)) {
    const withMint = patternsPerAccount(group) === 2;
    const patterns = [...new Set(accounts)].flatMap((account) => {
      const to = addressTopic(account);
      const transfer = [symbolTopic("transfer"), "*", to, "**"];
      return withMint ? [transfer, [symbolTopic("mint"), to, "**"]] : [transfer];
    });
    const contracts = group && { contractIds: group.map((asset) => sacContractId(asset, networkPassphrase)) };
    for (const requestPatterns of chunks(patterns, PATTERNS_PER_REQUEST)) {
      requests.push(chunks(requestPatterns, MAX_TOPICS_PER_FILTER).map((topics) => ({ type: "contract", ...contracts, topics })));
    }
  }
  return requests;
}

/** One request's filters for every transfer and mint on the network, for a follower watching too many accounts to name. */
export const everyCredit = (): EventFilter[][] => [
  [{ type: "contract", topics: [[symbolTopic("transfer"), "*", "*", "**"], [symbolTopic("mint"), "*", "**"]] }],
];

/**
 * How many getEvents calls (per page) `eventFilters` makes for `accountCount` distinct accounts: for
 * each group of up to 5 assets (or none), ceil(2N / 25), or ceil(N / 25) when the group is all native.
 */
export function getEventsCallsNeeded(accountCount: number, assets: readonly Asset[]): number {
  return assetGroups(assets).reduce((calls, group) => calls + Math.ceil((accountCount * patternsPerAccount(group)) / PATTERNS_PER_REQUEST), 0);
}

const decode = (base64: string) => xdr.ScVal.fromXDR(base64, "base64");

/** The G account an ScVal address names; undefined for contracts, claimable balances, pools and non-addresses. */
function accountOf(value: xdr.ScVal): string | undefined {
  if (value.switch() !== xdr.ScValType.scvAddress() || value.address().switch() !== xdr.ScAddressType.scAddressTypeAccount()) return undefined;
  return Address.fromScAddress(value.address()).toString();
}

/** `transfer` or `mint`, the two events that credit an account, and the account credited. */
function credit(event: RpcEvent): { kind: "transfer" | "mint"; to: string } | undefined {
  const first = event.topic[0] && decode(event.topic[0]);
  if (!first || first.switch() !== xdr.ScValType.scvSymbol()) return undefined;
  const kind = first.sym().toString();
  const to = kind === "transfer" ? event.topic[2] : kind === "mint" ? event.topic[1] : undefined;
  const account = to === undefined ? undefined : accountOf(decode(to));
  return account === undefined ? undefined : { kind: kind as "transfer" | "mint", to: account };
}

/** The G account a transfer or mint credits; undefined for other events and other recipients. */
export const eventRecipient = (event: RpcEvent): string | undefined => credit(event)?.to;

/** Whether `event` may be a payment in, so that its transaction must be fetched to say (see the header). */
export const needsTransaction = (event: RpcEvent): boolean => event.inSuccessfulContractCall && credit(event) !== undefined;

/** SEP-11's form of an asset, the last topic of a Stellar Asset Contract event: "native" or "CODE:ISSUER". */
function sep11Asset(event: RpcEvent, networkPassphrase: string): Asset | undefined {
  const last = event.topic.length > 0 ? decode(event.topic.at(-1)!) : undefined;
  const text = last?.switch() === xdr.ScValType.scvString() ? last.str().toString() : "";
  const match = /^([A-Za-z0-9]{1,12}):(G[A-Z2-7]{55})$/.exec(text);
  const asset = text === "native" ? { code: "XLM", issuer: null } : match && { code: match[1]!, issuer: match[2]! };
  return asset && sacContractId(asset, networkPassphrase) === event.contractId ? asset : undefined;
}

/**
 * Whether `event` comes from the Stellar Asset Contract of the asset it names. Any contract can emit a
 * look-alike `transfer` naming an account; checked before its transaction is fetched, so that nobody
 * can make ingestion fetch at will.
 */
export const fromAssetContract = (event: RpcEvent, networkPassphrase: string): boolean => sep11Asset(event, networkPassphrase) !== undefined;

/** The event value's amount: an i128, or a map with `amount` (and `to_muxed_id`). */
function eventAmount(event: RpcEvent): bigint {
  const value = decode(event.value);
  const amount =
    value.switch() === xdr.ScValType.scvMap()
      ? value.map()?.find((entry) => entry.key().switch() === xdr.ScValType.scvSymbol() && entry.key().sym().toString() === "amount")?.val()
      : value;
  if (amount?.switch() !== xdr.ScValType.scvI128()) throw new TypeError(`event ${event.id} has no i128 amount`);
  return scValToNative(amount) as bigint;
}

/** The G account of a G or M address. */
const baseAccount = (address: string) => (StrKey.isValidMed25519PublicKey(address) ? MuxedAccount.fromAddress(address, "0").baseAccount().accountId() : address);

const sdkAsset = (asset: SdkAsset): Asset => (asset.isNative() ? { code: "XLM", issuer: null } : { code: asset.getCode(), issuer: asset.getIssuer() });

/** A memo as Horizon renders it, so that one parser (memo.ts) reads both sources. */
function horizonMemo(memo: xdr.Memo): HorizonMemo {
  switch (memo.switch()) {
    case xdr.MemoType.memoId():
      return { memo_type: "id", memo: memo.id().toString() };
    case xdr.MemoType.memoText(): {
      const text = memo.text();
      const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
      return { memo_type: "text", memo: bytes.toString("utf8"), memo_bytes: bytes.toString("base64") };
    }
    case xdr.MemoType.memoHash():
      return { memo_type: "hash", memo: memo.hash().toString("base64") };
    case xdr.MemoType.memoReturn():
      return { memo_type: "return", memo: memo.retHash().toString("base64") };
    default:
      return { memo_type: "none" };
  }
}

/**
 * What the operation that emitted `event` brought into `account`, exactly as `incomingOperation` says
 * of Horizon's record of it (same ignore reasons), given its transaction from getTransaction. An event
 * that is not the operation's payment to `account` (a trade of a path payment, say) is `not_incoming`.
 */
export function incomingFromEvent(event: RpcEvent, transaction: RpcTransaction, account: string, networkPassphrase: string): IncomingOperation | { ignored: string } {
  if (transaction.txHash !== event.txHash) throw new TypeError(`event ${event.id} is of transaction ${event.txHash}, not ${transaction.txHash}`);
  if (transaction.status !== "SUCCESS" || !event.inSuccessfulContractCall) return { ignored: "transaction_failed" };
  const envelope = TransactionBuilder.fromXDR(transaction.envelopeXdr, networkPassphrase);
  const tx = envelope instanceof FeeBumpTransaction ? envelope.innerTransaction : envelope;
  // The event id's TOID counts operations from 0; Horizon's operation id counts them from 1.
  const toid = BigInt(event.id.split("-")[0]!);
  const op = tx.operations[event.operationIndex ?? Number(toid & 0xfffn)];
  if (!op) throw new TypeError(`event ${event.id} names an operation its transaction ${event.txHash} lacks`);
  let destination: string, paid: Asset;
  switch (op.type) {
    case "createAccount":
      [destination, paid] = [op.destination, { code: "XLM", issuer: null }];
      break;
    case "payment":
      [destination, paid] = [op.destination, sdkAsset(op.asset)];
      break;
    case "pathPaymentStrictReceive":
    case "pathPaymentStrictSend":
      [destination, paid] = [op.destination, sdkAsset(op.destAsset)];
      break;
    default:
      return { ignored: "unsupported_operation" };
  }
  const to = baseAccount(destination);
  if (to !== account) return { ignored: "not_incoming" };
  const from = baseAccount(op.source ?? tx.source);
  const movement = credit(event);
  if (!movement || movement.to !== to) return { ignored: "not_incoming" };
  const asset = sep11Asset(event, networkPassphrase);
  if (!asset) throw new TypeError(`event ${event.id} of a payment is not its asset contract's (${event.contractId})`);
  // A mint's sender is the issuer; a transfer names it.
  const sender = movement.kind === "mint" ? asset.issuer : accountOf(decode(event.topic[1]!));
  if (!sameAsset(asset, paid) || sender !== from) return { ignored: "not_incoming" };
  const amountStroops = eventAmount(event);
  if (amountStroops <= 0n) return { ignored: "zero_amount" };
  const memo = horizonMemo(tx.memo.toXDRObject());
  return {
    operationId: (toid + 1n).toString(),
    transactionHash: event.txHash,
    ledger: event.ledger,
    closedAt: new Date(event.ledgerClosedAt),
    to,
    muxedId: StrKey.isValidMed25519PublicKey(destination) ? MuxedAccount.fromAddress(destination, "0").id() : null,
    memo: memoFromHorizon(memo),
    shownMemo: memoShown(memo),
    asset,
    amountStroops,
    from,
    createsAccount: op.type === "createAccount",
  };
}

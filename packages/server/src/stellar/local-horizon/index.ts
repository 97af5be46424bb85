import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Asset, type FeeBumpTransaction, type Horizon, Keypair, type Memo, Operation, type Transaction } from "@stellar/stellar-sdk";
import { type GeneratedPayments, generatePayments, type GeneratePaymentsOptions } from "./bulk.js";
import { buildTransaction } from "./faucet.js";
import { formatStroops } from "./format.js";
import { createJsonRpcHandler } from "../local-rpc/jsonrpc.js";
import { createRpcMethods } from "../local-rpc/methods.js";
import { createHandler } from "./http.js";
import { LocalNetwork, type Submission } from "./network.js";
import { openJournal, replayJournal } from "./persist.js";
import { LocalHorizonError } from "./problems.js";
import { recordHash, transactionJson } from "./records.js";
import { StreamHub } from "./sse.js";

export { LocalHorizonError, type Problem } from "./problems.js";
export { JournalError } from "./persist.js";
export { FRIENDBOT_LUMENS } from "./faucet.js";
export type { GeneratedPayments, GeneratePaymentsOptions } from "./bulk.js";

/** The passphrase of stellar-core's standalone network. */
export const STANDALONE_PASSPHRASE = "Standalone Network ; February 2017";

export type TransactionRecord = Horizon.HorizonApi.TransactionResponse;

export interface LocalHorizonOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  networkPassphrase?: string;
  /** Close a ledger on this interval, grouping submissions; default: every submission closes its own ledger. */
  ledgerCloseMs?: number;
  /** Ledger close times and time-bound checks read this clock. */
  clock?: () => Date;
  /**
   * Keep the chain in this directory (see persist.ts): every ledger with transactions is appended to
   * `ledger.jsonl` as it closes, and replayed on start. Without it the chain lives in memory only.
   */
  journalDir?: string;
  /** Also serve Stellar RPC (see ../local-rpc) from the same chain on this port of `host`; 0 picks a free one. */
  rpcPort?: number;
  /** How many of the latest ledgers the RPC keeps (stellar-rpc's retention window); default: every ledger. */
  rpcRetentionLedgers?: number;
}

export interface PayOptions {
  from: Keypair;
  /** A G or M address; an unknown G account is created by the payment. */
  to: string;
  amount: string;
  asset?: Asset;
  memo?: Memo;
  /** false records the transaction as failed. */
  successful?: boolean;
}

export interface LocalHorizon {
  /** Base URL, e.g. `http://127.0.0.1:41234`, for `new Horizon.Server(url, { allowHttp: true })`. */
  url: string;
  /** With `rpcPort`, Stellar RPC's URL, for `new rpc.Server(url, { allowHttp: true })`; otherwise undefined. */
  rpcUrl: string | undefined;
  networkPassphrase: string;
  /** The root account (`Keypair.master(networkPassphrase)`) holding every lumen; `fund` pays from it. */
  root: Keypair;
  /** Creates `account` with `amount` lumens (a create_account from the root), or tops it up with a payment. */
  fund(account: string, amount?: string): Promise<TransactionRecord>;
  /** A new random account holding `amount` lumens. */
  newAccount(amount?: string): Promise<Keypair>;
  /** Submits like `POST /transactions`: the record, or a LocalHorizonError (also for an included `tx_failed`). */
  submit(tx: Transaction | FeeBumpTransaction | string): Promise<TransactionRecord>;
  /**
   * Records a signed transaction, as failed if `successful` is false (its first operation fails). Sequence number
   * and signatures are still checked; rejects like `submit` when the outcome is not the one asked for.
   */
  addSignedTransaction(tx: Transaction | FeeBumpTransaction | string, options?: { successful?: boolean }): Promise<TransactionRecord>;
  /** Builds, signs and records a one-payment transaction from `from` at its current sequence number (see addSignedTransaction). */
  pay(options: PayOptions): Promise<TransactionRecord>;
  /** Records `count` real signed payments to `to` quickly (see GeneratePaymentsOptions). */
  generatePayments(to: string, count: number, options?: GeneratePaymentsOptions): Promise<GeneratedPayments>;
  /** `account`'s balance as a 7-decimal string ("0.0000000" without a balance line); undefined if it does not exist. */
  balance(account: string, asset?: Asset): string | undefined;
  /** Closes the open ledger now instead of waiting for the `ledgerCloseMs` timer. */
  closeLedger(): void;
  /** Ends every stream with Horizon's goodbye event, then stops the servers; safe to call again. */
  close(): Promise<void>;
}

/**
 * Starts a Horizon-compatible server for a local network whose root account holds every lumen.
 *
 * Serves `/`, `/fee_stats`, `/accounts/:id`, `/accounts/:id/payments`, `/payments`, `/transactions/:hash`,
 * `/transactions/:hash/operations`, `/operations/:id`, `/operations/:id/effects` (pages, or server-sent events
 * with `Accept: text/event-stream`) and `POST /transactions`, plus a faucet (faucet.ts): `GET /friendbot?addr=G…`
 * as on testnet and the local-only `POST /_local/mint`. Simplifications against the real network: no
 * reserves or trust lines (credit balances appear on receipt), payments create unknown destination accounts,
 * path payments convert 1:1, only master-key signers, and only create_account, payments, path payments,
 * account_merge, change_trust, manage_data, bump_sequence and set_options are accepted (others: `tx_not_supported`).
 * With `rpcPort` a second server answers Stellar RPC's JSON-RPC methods (../local-rpc/methods.ts) from the same chain.
 */
/**
 * An HTTP server that keeps idle connections longer than clients do (Node's agent drops them after
 * 5 s, the server's default is also 5 s): otherwise a client can reuse a connection at the moment the
 * server closes it, and the request fails with ECONNRESET, which a loaded machine makes likely.
 */
function idleTolerantServer(): Server {
  const server = createServer();
  server.keepAliveTimeout = 65_000;
  return server;
}

export async function startLocalHorizon(options: LocalHorizonOptions = {}): Promise<LocalHorizon> {
  const { host = "127.0.0.1", port = 0, networkPassphrase = STANDALONE_PASSPHRASE, ledgerCloseMs, clock = () => new Date() } = options;
  const journal = options.journalDir === undefined ? undefined : await openJournal(options.journalDir);
  const network = new LocalNetwork({ networkPassphrase, clock, ledgerCloseMs, onLedgerClosed: journal?.append });
  const streams = new StreamHub(network.history);
  const server = idleTolerantServer();
  const rpc = options.rpcPort === undefined ? undefined : { server: idleTolerantServer(), port: options.rpcPort };
  const listen = (target: Server, targetPort: number) =>
    new Promise<void>((resolve, reject) => {
      target.once("error", reject);
      target.listen(targetPort, host, () => resolve());
    });
  const urlOf = (target: Server) => `http://${host.includes(":") ? `[${host}]` : host}:${(target.address() as AddressInfo).port}`;
  try {
    // Synchronous, so the ledger timer cannot close a ledger in the middle of it.
    if (journal) replayJournal(network, journal.entries);
    await listen(server, port);
    if (rpc) await listen(rpc.server, rpc.port);
  } catch (error) {
    // The RPC's port may be the one taken, after Horizon's was bound.
    if (server.listening) server.close();
    network.stop();
    await journal?.close();
    throw error;
  }
  const url = urlOf(server);
  server.on("request", createHandler(network, streams, url));
  rpc?.server.on("request", createJsonRpcHandler(createRpcMethods(network, { retentionLedgers: options.rpcRetentionLedgers })));
  // Shared by every caller of close(), so that closing twice is harmless.
  let closing: Promise<void> | undefined;

  // `expectSuccess`: a transaction included as failed is an error unless the caller asked for a failure.
  const record = (submission: Submission, expectSuccess: boolean): TransactionRecord => {
    if (submission.kind === "rejected") throw new LocalHorizonError(submission.problem);
    if (expectSuccess && submission.problem) throw new LocalHorizonError(submission.problem);
    return transactionJson(submission.row, url, recordHash(submission.row)) as unknown as TransactionRecord;
  };
  const fund = async (account: string, amount = "10000") => {
    const exists = network.state.accounts.has(account);
    const op = exists
      ? Operation.payment({ destination: account, asset: Asset.native(), amount })
      : Operation.createAccount({ destination: account, startingBalance: amount });
    return record(await network.submit(buildTransaction(network, network.root, op)), true);
  };

  return {
    url,
    rpcUrl: rpc && urlOf(rpc.server),
    networkPassphrase,
    root: network.root,
    fund,
    async newAccount(amount) {
      const keypair = Keypair.random();
      await fund(keypair.publicKey(), amount);
      return keypair;
    },
    async submit(tx) {
      return record(await network.submit(tx), true);
    },
    async addSignedTransaction(tx, { successful = true } = {}) {
      return record(await network.submit(tx, { forceFailure: !successful }), successful);
    },
    async pay({ from, to, amount, asset = Asset.native(), memo, successful = true }) {
      const tx = buildTransaction(network, from, Operation.payment({ destination: to, asset, amount }), memo);
      return record(await network.submit(tx, { forceFailure: !successful }), successful);
    },
    generatePayments: (to, count, generateOptions) => generatePayments(network, fund, to, count, generateOptions),
    balance(account, asset = Asset.native()) {
      const state = network.state.accounts.get(account);
      if (!state) return undefined;
      if (asset.isNative()) return formatStroops(state.native);
      return formatStroops(state.lines.get(`${asset.getCode()}:${asset.getIssuer()}`)?.balance ?? 0n);
    },
    closeLedger: () => network.chain.close(),
    close() {
      closing ??= (async () => {
        const stopped = (target: Server) => new Promise<void>((resolve, reject) => target.close((error) => (error ? reject(error) : resolve())));
        const closed = Promise.all([stopped(server), rpc && stopped(rpc.server)]);
        await streams.closeAll();
        network.stop();
        server.closeAllConnections();
        rpc?.server.closeAllConnections();
        await closed;
        await journal?.close();
      })();
      return closing;
    },
  };
}

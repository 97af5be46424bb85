import { hash, xdr } from "@stellar/stellar-sdk";
import { MAX_TXS_PER_LEDGER } from "../local-horizon/chain.js";
import { PROTOCOL_VERSION, TOTAL_STROOPS } from "../local-horizon/network.js";
import { recordHash } from "../local-horizon/records.js";
import { BASE_FEE } from "../local-horizon/state.js";
import type { Ledger, TxRow } from "../local-horizon/types.js";

// The real networks' reserve; the local network does not enforce reserves.
const BASE_RESERVE = 5_000_000;
const ZERO_HASH = Buffer.alloc(32);

export interface LedgerXdr {
  /** Hex SHA-256 of the header, as a real ledger's hash is. */
  hash: string;
  /** Base64 `LedgerHeader`. */
  headerXdr: string;
  /** Base64 `LedgerCloseMeta`. */
  metadataXdr: string;
}

export const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/**
 * A closed ledger as real XDR: its header carries what the local network knows (sequence, close time,
 * protocol, base fee, all the lumens) and zeros for the hashes it does not keep (previous ledger, bucket
 * list, results), so ledgers are not chained; its close meta (version 0) holds the ledger's transactions
 * with their results and meta.
 */
export function ledgerXdr(ledger: Ledger, rows: readonly TxRow[]): LedgerXdr {
  const txSet = new xdr.TransactionSet({
    previousLedgerHash: ZERO_HASH,
    txes: rows.map((row) => xdr.TransactionEnvelope.fromXDR(row.tx.envelopeXdr, "base64")),
  });
  const header = new xdr.LedgerHeader({
    ledgerVersion: PROTOCOL_VERSION,
    previousLedgerHash: ZERO_HASH,
    scpValue: new xdr.StellarValue({
      txSetHash: hash(txSet.toXDR()),
      closeTime: new xdr.Uint64(BigInt(unixSeconds(ledger.closedAt))),
      upgrades: [],
      ext: xdr.StellarValueExt.stellarValueBasic(),
    }),
    txSetResultHash: ZERO_HASH,
    bucketListHash: ZERO_HASH,
    ledgerSeq: ledger.sequence,
    totalCoins: new xdr.Int64(TOTAL_STROOPS),
    feePool: new xdr.Int64(0n),
    inflationSeq: 0,
    idPool: new xdr.Uint64(0n),
    baseFee: Number(BASE_FEE),
    baseReserve: BASE_RESERVE,
    maxTxSetSize: MAX_TXS_PER_LEDGER,
    skipList: [ZERO_HASH, ZERO_HASH, ZERO_HASH, ZERO_HASH],
    ext: new xdr.LedgerHeaderExt(0),
  });
  const ledgerHash = hash(header.toXDR());
  const txProcessing = rows.map(
    (row) =>
      new xdr.TransactionResultMeta({
        // A fee bump's result is filed under its outer hash.
        result: new xdr.TransactionResultPair({ transactionHash: Buffer.from(recordHash(row), "hex"), result: xdr.TransactionResult.fromXDR(row.resultXdr, "base64") }),
        feeProcessing: [],
        txApplyProcessing: xdr.TransactionMeta.fromXDR(row.resultMetaXdr, "base64"),
      }),
  );
  const meta = new xdr.LedgerCloseMeta(
    0,
    new xdr.LedgerCloseMetaV0({
      ledgerHeader: new xdr.LedgerHeaderHistoryEntry({ hash: ledgerHash, header, ext: new xdr.LedgerHeaderHistoryEntryExt(0) }),
      txSet,
      txProcessing,
      upgradesProcessing: [],
      scpInfo: [],
    }),
  );
  return { hash: ledgerHash.toString("hex"), headerXdr: header.toXDR("base64"), metadataXdr: meta.toXDR("base64") };
}

import type { IncomingOperation } from "./incoming.js";

/** The ledgers a source serves now, with close times in milliseconds. */
export interface LedgerWindow {
  latest: number;
  oldest: number;
  latestClose: number;
  oldestClose: number;
}

/** What a scan found: per account, its operations (or why each is none) in ledger order. */
export type Scanned = Map<string, Array<IncomingOperation | { ignored: string }>>;

/**
 * Where the ledger follower (follower.ts) reads the chain: Stellar RPC's events (rpc-source.ts) or
 * Horizon's payments (horizon-source.ts). Both give operations exactly as `incomingOperation` reads
 * Horizon's records, so matching cannot tell them apart.
 */
export interface LedgerSource {
  readonly name: "rpc" | "horizon";
  window(): Promise<LedgerWindow>;
  /** The operations of ledgers `from` … `to` (both kept by the source) into `accounts`. */
  scan(accounts: string[], from: number, to: number): Promise<Scanned>;
  /**
   * For each account, a ledger closed before `since` (or 0), from which scanning finds everything the
   * account received since then; earlier is allowed — operations before `since` are skipped anyway.
   */
  ledgersBefore(accounts: Array<{ account: string; since: Date }>, window: LedgerWindow): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** A ledger before `at`, interpolated over the window's close times with room to spare, for a source that cannot search by time. */
export function estimateLedgerBefore(at: number, w: LedgerWindow): number {
  if (w.latest <= w.oldest || w.latestClose <= w.oldestClose) return Math.max(0, w.oldest - 1);
  const perMs = (w.latest - w.oldest) / (w.latestClose - w.oldestClose);
  const estimate = w.oldest + Math.floor((at - w.oldestClose) * perMs);
  // Ledger times vary: start a tenth of the distance, and ten minutes' worth, earlier.
  const margin = Math.ceil((w.latest - estimate) / 10 + 600_000 * perMs);
  // Inside the window, the estimate must not reach before it: that would look like a gap.
  return Math.min(w.latest, Math.max(at >= w.oldestClose ? w.oldest - 1 : 0, estimate - margin - 1));
}

import { Horizon } from "@stellar/stellar-sdk";
import type { Clock } from "../clock.js";
import { transaction, type Pool } from "../db/pool.js";
import type { PaymentLinks } from "../payments/service.js";
import { asPaymentRecords, incomingOperation, type IncomingOperation } from "./incoming.js";
import type { IngestLog } from "./ingest-account.js";
import { isDue, type ApplyOperations } from "./follower.js";
import { advanceCatchUp, advanceFollower, listFollowedAccounts, readFollower, type FollowedAccount } from "./follower-store.js";
import type { LedgerSource } from "./ledger-source.js";

export interface BackfillDeps<T> {
  pool: Pool;
  /** The source ingestion follows, whose oldest ledger ends the gap. */
  source: Pick<LedgerSource, "window">;
  /** The Horizon (with full history for the range) that fills the gap. */
  horizonUrl: string;
  networkPassphrase: string;
  links: PaymentLinks;
  clock: Clock;
  log: Pick<IngestLog, "info">;
  apply: ApplyOperations<T>;
}

/** One position that was filled: the follower's, or a group of accounts catching up. */
export interface FilledRange {
  position: "follower" | "catch-up";
  accounts: number;
  fromLedger: number;
  toLedger: number;
  operations: number;
}

const PAGE_LIMIT = 200;

/**
 * Fills what the ledger follower waits for and its source no longer keeps (see `inGap` in follower.ts):
 * for each stalled position, the operations of its accounts from the next ledger up to the one before
 * the source's oldest are read from Horizon, applied by the same rules, and the position moved past
 * them, in one transaction that first checks nobody moved it meanwhile. `fromLedger` also re-reads
 * from that ledger (for a provider known to have lost events); what is applied already is a duplicate.
 */
export async function backfillFromHorizon<T>(deps: BackfillDeps<T>, { fromLedger }: { fromLedger?: number } = {}): Promise<FilledRange[]> {
  const { pool, networkPassphrase } = deps;
  const { oldest } = await deps.source.window();
  const follower = await readFollower(pool, networkPassphrase);
  if (follower === undefined) return [];
  const accounts = await listFollowedAccounts(pool, networkPassphrase);
  const groups = new Map<number | null, FollowedAccount[]>();
  for (const a of accounts) groups.set(a.catchUpLedger, [...(groups.get(a.catchUpLedger) ?? []), a]);
  if (!groups.has(null)) groups.set(null, []);

  const server = new Horizon.Server(deps.horizonUrl, { allowHttp: new URL(deps.horizonUrl).protocol === "http:" });
  const filled: FilledRange[] = [];
  for (const [catchUp, members] of groups) {
    const position = catchUp ?? follower;
    const inGap = position + 1 < oldest;
    if (!inGap && fromLedger === undefined) continue;
    const start = Math.min(position, (fromLedger ?? Infinity) - 1);
    const end = inGap ? oldest - 1 : position;
    const ops = new Map<string, Array<IncomingOperation | { ignored: string }>>();
    for (const member of members) ops.set(member.account, await horizonOperations(server, member, start, end));
    const moved = catchUp === null || end >= follower ? null : end;
    await transaction(pool, async (tx) => {
      if (catchUp === null) {
        if ((await readFollower(tx, networkPassphrase, { forUpdate: true })) !== follower) throw new Error("the follower moved during the backfill; run it again");
        await advanceFollower(tx, networkPassphrase, end, deps.clock.now());
      } else {
        const names = members.map((m) => m.account);
        if ((await advanceCatchUp(tx, networkPassphrase, names, catchUp, moved)).length !== names.length) throw new Error("accounts moved during the backfill; run it again");
      }
      const now = deps.clock.now();
      for (const [account, list] of ops) await deps.apply(tx, list, { now, networkPassphrase, links: deps.links, account });
    });
    const operations = [...ops.values()].reduce((n, list) => n + list.length, 0);
    filled.push({ position: catchUp === null ? "follower" : "catch-up", accounts: members.length, fromLedger: start + 1, toLedger: end, operations });
    deps.log.info({ accounts: members.length, fromLedger: start + 1, toLedger: end, operations }, "filled a gap of the ledger follower from Horizon");
  }
  return filled;
}

/** `account`'s payment records in ledgers `after + 1` … `through`, read as ingestion reads them. */
async function horizonOperations(server: Horizon.Server, watched: FollowedAccount, after: number, through: number) {
  const found: Array<IncomingOperation | { ignored: string }> = [];
  // Paging tokens are TOIDs: the first of ledger L is L << 32.
  let page = await server.payments().forAccount(watched.account).cursor(((BigInt(after + 1) << 32n) - 1n).toString()).limit(PAGE_LIMIT).join("transactions").call();
  for (;;) {
    for (const record of asPaymentRecords(page.records)) {
      if (Number(BigInt(record.paging_token) >> 32n) > through) return found;
      const op = incomingOperation(record, watched.account);
      if (isDue(op, watched)) found.push(op);
    }
    if (page.records.length < PAGE_LIMIT) return found;
    page = await page.next();
  }
}

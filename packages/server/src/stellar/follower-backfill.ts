import type { Clock } from "../clock.js";
import { transaction, type Pool } from "../db/pool.js";
import type { PaymentLinks } from "../payments/service.js";
import { createHorizonSource } from "./horizon-source.js";
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
  log: Pick<IngestLog, "info" | "warn">;
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

  // Each account's own list, whatever their number: what the list says of the account is what was read.
  const horizon = createHorizonSource({ url: deps.horizonUrl, log: deps.log, maxNamedAccounts: Infinity });
  try {
    return await fill(deps, horizon, groups, { follower, oldest, fromLedger });
  } finally {
    await horizon.close();
  }
}

async function fill<T>(
  deps: BackfillDeps<T>,
  horizon: LedgerSource,
  groups: Map<number | null, FollowedAccount[]>,
  { follower, oldest, fromLedger }: { follower: number; oldest: number; fromLedger: number | undefined },
): Promise<FilledRange[]> {
  const { pool, networkPassphrase } = deps;
  const filled: FilledRange[] = [];
  for (const [catchUp, members] of groups) {
    const position = catchUp ?? follower;
    const inGap = position + 1 < oldest;
    if (!inGap && fromLedger === undefined) continue;
    const start = Math.min(position, (fromLedger ?? Infinity) - 1);
    const end = inGap ? oldest - 1 : position;
    const ops = await horizon.scan(members.map((m) => m.account), start + 1, end);
    for (const member of members) ops.set(member.account, (ops.get(member.account) ?? []).filter((op) => isDue(op, member)));
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

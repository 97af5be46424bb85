import { Resolver } from "node:dns/promises";

/** What DNS said about one name: its TXT records (each record's strings joined), or why it did not answer. */
export type TxtAnswer = { records: string[] } | { failure: string };

/** Looks up the TXT records of several names at once, within a deadline; never rejects. */
export type TxtLookup = (names: string[]) => Promise<TxtAnswer[]>;

/** A check never waits on DNS longer than this, whatever the servers do. */
export const DNS_DEADLINE_MS = 5_000;
/** Per query attempt; a second attempt covers one lost UDP packet within the deadline. */
const ATTEMPT_TIMEOUT_MS = 1_000;
const ATTEMPTS = 2;

/** The name does not exist, or has no TXT record: an answer, not a failure. */
const NO_RECORDS = new Set(["ENODATA", "ENOTFOUND"]);

async function resolveTxt(resolver: Resolver, name: string): Promise<TxtAnswer> {
  try {
    return { records: (await resolver.resolveTxt(name)).map((strings) => strings.join("")) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "EUNKNOWN";
    return NO_RECORDS.has(code) ? { records: [] } : { failure: code };
  }
}

/**
 * TXT lookups against `servers` (`IP` or `IP:port`, DNS_SERVERS), or the system's resolver when the
 * list is empty. Lookups that outlive DNS_DEADLINE_MS are cancelled and answer `ECANCELLED`.
 */
export function createTxtLookup(servers: string[]): TxtLookup {
  return async (names) => {
    // A resolver per check: cancelling one at its deadline must not cancel another request's queries.
    const resolver = new Resolver({ timeout: ATTEMPT_TIMEOUT_MS, tries: ATTEMPTS });
    if (servers.length > 0) resolver.setServers(servers);
    const deadline = setTimeout(() => resolver.cancel(), DNS_DEADLINE_MS);
    try {
      return await Promise.all(names.map((name) => resolveTxt(resolver, name)));
    } finally {
      clearTimeout(deadline);
    }
  };
}

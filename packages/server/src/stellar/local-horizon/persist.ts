import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { mkdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { decodeTransaction } from "./decode.js";
import type { LocalNetwork } from "./network.js";
import type { DecodedTx, Ledger, TxRow } from "./types.js";

/**
 * The journal that lets a local network outlive its process: `ledger.jsonl`, one JSON line per closed
 * ledger that holds transactions (its sequence, close time, and each transaction's envelope and outcome),
 * appended and fsynced as the ledger closes, before its records become visible. Replaying it applies the
 * same envelopes in the same ledgers, so every record comes back with its hash, id and paging token.
 * `owner` holds the pid of the process writing it: two writers would interleave two chains.
 */

export interface JournalEntry {
  ledger: number;
  closed_at: string;
  txs: Array<{ envelope: string; successful: boolean }>;
}

/** A journal that cannot be used: held by another process, unreadable, or no longer replaying. */
export class JournalError extends Error {
  override name = "JournalError";
}

export interface Journal {
  /** Ledgers kept by earlier runs, oldest first. */
  readonly entries: readonly JournalEntry[];
  /**
   * Appends a closed ledger durably. Empty ledgers are not kept, nor ledgers the journal already holds
   * (replay closes those again).
   */
  append(ledger: Ledger, txs: readonly TxRow[]): void;
  /** Closes the file and releases the directory; safe to call again. */
  close(): Promise<void>;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Takes `dir` for this process. A record of our own pid is stale: a container's pid 1 restarted. */
async function claim(dir: string, owner: string): Promise<void> {
  for (;;) {
    try {
      await writeFile(owner, `${process.pid}\n`, { flag: "wx" });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const pid = Number((await readFile(owner, "utf8").catch(() => "")).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new JournalError(`another process (pid ${pid}) is running the local network kept in ${dir}; stop it first`);
    }
    await rm(owner, { force: true });
  }
}

function parseEntry(line: string, where: string): JournalEntry {
  let entry: JournalEntry;
  try {
    entry = JSON.parse(line) as JournalEntry;
  } catch {
    throw new JournalError(`${where} is not JSON`);
  }
  const valid =
    Number.isSafeInteger(entry.ledger) &&
    !Number.isNaN(Date.parse(entry.closed_at)) &&
    Array.isArray(entry.txs) &&
    entry.txs.every((tx) => typeof tx.envelope === "string" && typeof tx.successful === "boolean");
  if (!valid) throw new JournalError(`${where} is not a ledger entry`);
  return entry;
}

/** Reads the entries; a last line without its newline is a write cut short by a crash, and is dropped from the file. */
async function readEntries(file: string): Promise<JournalEntry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  if (complete.length < text.length) await truncate(file, Buffer.byteLength(complete));
  const lines = complete.split("\n").slice(0, -1);
  return lines.map((line, i) => parseEntry(line, `${file}:${i + 1}`));
}

/** Opens (creating) the journal in `dir` and claims it for this process. */
export async function openJournal(dir: string): Promise<Journal> {
  const file = path.join(dir, "ledger.jsonl");
  const owner = path.join(dir, "owner");
  await mkdir(dir, { recursive: true });
  await claim(dir, owner);
  let fd: number;
  let entries: JournalEntry[];
  try {
    entries = await readEntries(file);
    fd = openSync(file, "a");
  } catch (error) {
    await rm(owner, { force: true });
    throw error;
  }
  let lastLedger = entries.at(-1)?.ledger ?? 0;
  let closing: Promise<void> | undefined;
  return {
    entries,
    append(ledger, txs) {
      if (txs.length === 0 || ledger.sequence <= lastLedger) return;
      if (closing) throw new JournalError(`ledger ${ledger.sequence} closed after the journal in ${dir} was closed`);
      const entry: JournalEntry = {
        ledger: ledger.sequence,
        closed_at: ledger.closedAt.toISOString(),
        txs: txs.map((row) => ({ envelope: row.tx.envelopeXdr, successful: row.successful })),
      };
      // Synchronous, so the ledger is on disk before the chain publishes it and answers its submitters.
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
      lastLedger = ledger.sequence;
    },
    close() {
      closing ??= (async () => {
        closeSync(fd);
        await rm(owner, { force: true });
      })();
      return closing;
    },
  };
}

/**
 * Applies `entries` to a fresh `network`, each transaction in its recorded ledger with its recorded outcome.
 * Signatures were checked when the transactions were first accepted; time bounds are checked at a moment
 * inside them, since the original acceptance proved one exists. Throws a JournalError when a transaction
 * no longer applies as it did (the journal was edited, or belongs to another network).
 */
export function replayJournal(network: LocalNetwork, entries: readonly JournalEntry[]): void {
  for (const entry of entries) {
    const closedAt = new Date(entry.closed_at);
    const closeSeconds = BigInt(Math.floor(closedAt.getTime() / 1000));
    if (entry.ledger < network.chain.openSequence) throw new JournalError(`ledger ${entry.ledger} is out of order in the journal`);
    network.chain.skipTo(entry.ledger);
    entry.txs.forEach((recorded, i) => {
      const where = `transaction ${i + 1} of ledger ${entry.ledger}`;
      let tx: DecodedTx;
      try {
        tx = decodeTransaction(recorded.envelope, network.options.networkPassphrase);
      } catch (error) {
        throw new JournalError(`${where} does not decode: ${(error as Error).message}`);
      }
      let closeTime = closeSeconds;
      if (tx.timeBounds && closeTime < tx.timeBounds.min) closeTime = tx.timeBounds.min;
      if (tx.timeBounds && tx.timeBounds.max !== 0n && closeTime > tx.timeBounds.max) closeTime = tx.timeBounds.max;
      const outcome = network.include(tx, { trustSignatures: true, forceFailure: !recorded.successful, closeTime });
      if (outcome.kind === "rejected" || outcome.row.successful !== recorded.successful) {
        throw new JournalError(`${where} no longer applies as recorded (was it written for another network?)`);
      }
    });
    network.chain.close(closedAt);
  }
}

import { isConflict } from "./pool.js";

export interface BatcherOptions {
  /** Statements running at once; more split the same load into smaller batches. */
  maxInFlight: number;
  /**
   * With this, a statement starts beside running ones only once the youngest of them has run this
   * long (waiting on a lock, say); until then what arrives waits for it. Without, at once.
   */
  overlapAfterMs?: number;
  /** Items in one statement at most. */
  maxBatch: number;
  /** Called with each batch's size as it is sent. */
  onBatch?: (size: number) => void;
}

interface Waiting<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * PostgreSQL refused the statement for something a row of it may be alone in (bad data, a constraint,
 * a deadlock with another batch): nothing was written, and each item is tried again on its own so
 * that only the row at fault fails — a lone item too, once, when it was a conflict (a serialization
 * failure or a deadlock), which a second run can pass. A lost connection or a timeout fails the whole
 * batch, as it would each of its requests.
 */
function worthTryingAlone(error: unknown, batchSize: number): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|40)/.test(code) && (batchSize > 1 || isConflict(error));
}

/**
 * Coalesces concurrent single-row writes into multi-row statements. A submitted item is written at
 * once while fewer than `maxInFlight` statements run (and, with `overlapAfterMs`, none has just
 * started); otherwise it waits, with whatever else arrives, for one to finish, and they go together.
 * An idle server adds no wait; a busy one pays PostgreSQL's per-statement cost (planning, executor
 * start, a commit and its WAL flush) and a round trip once per batch instead of once per request —
 * for creating a payment that cost is most of the database's work.
 */
export class Batcher<T, R> {
  private readonly waiting: Array<Waiting<T, R>> = [];
  /** When each running statement started (performance.now()). */
  private readonly running = new Set<{ startedAt: number }>();
  private overlapTimer: NodeJS.Timeout | undefined;

  /** `writeAll` writes every item in one statement and returns their results in the same order. */
  constructor(
    private readonly writeAll: (items: T[]) => Promise<R[]>,
    private readonly options: BatcherOptions,
  ) {}

  /** Resolves once `item` is written (committed, when the statement runs outside a transaction). */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.send();
    });
  }

  private send(): void {
    while (this.running.size < this.options.maxInFlight && this.waiting.length > 0) {
      const wait = this.overlapWait();
      if (wait > 0) return this.sendIn(wait);
      const batch = this.waiting.splice(0, this.options.maxBatch);
      const statement = { startedAt: performance.now() };
      this.running.add(statement);
      this.options.onBatch?.(batch.length);
      void this.write(batch).finally(() => {
        this.running.delete(statement);
        this.send();
      });
    }
  }

  /** Milliseconds until a statement may start beside the running ones. */
  private overlapWait(): number {
    if (this.running.size === 0 || this.options.overlapAfterMs === undefined) return 0;
    let youngest = 0;
    for (const { startedAt } of this.running) youngest = Math.max(youngest, startedAt);
    return youngest + this.options.overlapAfterMs - performance.now();
  }

  private sendIn(ms: number): void {
    if (this.overlapTimer) return;
    // A finishing statement also calls send(); the timer is for one that does not finish soon.
    this.overlapTimer = setTimeout(() => {
      this.overlapTimer = undefined;
      this.send();
    }, Math.ceil(ms)).unref();
  }

  private async write(batch: Array<Waiting<T, R>>): Promise<void> {
    try {
      const results = await this.writeAll(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (error) {
      if (!worthTryingAlone(error, batch.length)) {
        for (const w of batch) w.reject(error);
        return;
      }
      await Promise.all(batch.map((w) => this.writeAll([w.item]).then(([result]) => w.resolve(result!), w.reject)));
    }
  }
}

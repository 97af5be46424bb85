import { signDelivery } from "@lumenpay/webhooks";
import { Batcher } from "../db/batcher.js";
import type { Db, Pool } from "../db/pool.js";
import { transaction } from "../db/pool.js";
import type { Clock } from "../clock.js";
import { recordEvent } from "../events/outbox.js";
import type { WebhookMetrics } from "./metrics.js";
import { completeDeliveries, failDelivery, releaseDeliveries, type AttemptRecord, type ClaimedDelivery, type Completion } from "./queue.js";
import { nextAttemptAt } from "./retry.js";
import type { SecretBox } from "./secrets.js";
import type { SendResult, WebhookSender } from "./sender.js";
import { endpointOut, markEndpointFailing, parkPendingDeliveries, setEndpointDisabled, type EndpointRow } from "./endpoints-store.js";

export interface DeliverDeps {
  pool: Pool;
  clock: Clock;
  sender: WebhookSender;
  secrets: SecretBox;
  signingSeed: string | undefined;
  retryScheduleMs: readonly number[];
  disableAfterHours: number;
  metrics: WebhookMetrics;
  random: () => number;
  log: { warn(obj: object, msg: string): void };
  /** Wakes the workers once a recording that queued deliveries (`endpoint.disabled`) has committed. */
  wake: () => void;
  /** The completion statement is named (not through a transaction pooler: db/pool.ts `statement`). */
  preparedStatements: boolean;
}

/** Every secret that signs right now: the current one, and the previous one during its grace period. */
function liveSecrets(d: ClaimedDelivery, box: SecretBox, now: Date): string[] {
  const secrets = [box.open(d.secret)];
  if (d.previousSecret && d.previousSecretExpiresAt && d.previousSecretExpiresAt > now) secrets.push(box.open(d.previousSecret));
  return secrets;
}

/** The outcome of an attempt that could not be prepared: no request, nothing received. */
const NOT_SENT: SendResult = { ok: false, durationMs: 0, bodySnippet: "" };

/** Most completions recorded by one statement; bounds its size. */
const MAX_COMPLETION_BATCH = 500;

/**
 * One attempt of one delivery: sign afresh (same id and body, new timestamp), send, and record the
 * outcome with its attempt log atomically — success (batched with other successes of this worker),
 * a scheduled retry, or final failure.
 */
export function createDeliverer(deps: DeliverDeps) {
  // Recording touches nothing outside the database, so a transaction a conflict aborted is simply run again.
  const retryOnce = { retryOnConflict: true, log: deps.log };
  /**
   * The signed headers, or undefined when the delivery cannot even be signed (a secret encrypted with
   * another LUMENPAY_ENCRYPTION_KEY): counted like a failed attempt, so that it follows the retry
   * schedule to `failed` instead of being claimed forever. The cause is logged, never the secret.
   */
  const prepare = (d: ClaimedDelivery, at: Date) => {
    try {
      return signDelivery({ id: d.eventId, timestamp: Math.floor(at.getTime() / 1000), body: d.body, secrets: liveSecrets(d, deps.secrets, at), signingSeed: deps.signingSeed });
    } catch (error) {
      deps.metrics.deliveryErrors.inc({ reason: "preparation_failed" });
      deps.log.warn({ delivery: d.id, endpoint: d.endpointId, error: (error as Error).name }, "a delivery could not be signed (is LUMENPAY_ENCRYPTION_KEY the one its secret was stored with?)");
      return undefined;
    }
  };

  // One statement at a time: the successes answered meanwhile are recorded together by the next.
  const completions = new Batcher(async (batch: Completion[]) => {
    const recorded = await completeDeliveries(deps.pool, batch, deps.preparedStatements);
    return batch.map((c) => recorded.has(c.id));
  }, { maxInFlight: 1, maxBatch: MAX_COMPLETION_BATCH });

  return async function deliver(d: ClaimedDelivery, signal: AbortSignal, answered: () => void): Promise<void> {
    const startedAt = deps.clock.now();
    const headers = prepare(d, startedAt);
    const result: SendResult = headers
      ? await deps.sender.send({ url: d.url, headers: { ...headers }, body: d.body, signal })
      : NOT_SENT;
    answered();
    if (result.errorClass === "aborted") {
      // Cut short by shutdown: hand the row back for another worker rather than count a failure.
      // An answer that did arrive is recorded like any other, so the receiver's log and ours agree.
      await releaseDeliveries(deps.pool, [d]);
      return;
    }
    // The merchant sees only the error class; what DNS or the address policy said stays in our log.
    if (result.detail) deps.log.warn({ delivery: d.id, endpoint: d.endpointId, detail: result.detail }, "webhook endpoint unreachable");
    const now = deps.clock.now();
    const attempt: AttemptRecord = {
      attempt: d.attempt,
      startedAt,
      durationMs: Math.round(result.durationMs),
      statusCode: result.status ?? null,
      errorClass: result.ok ? null : result === NOT_SENT ? "preparation_failed" : (result.errorClass ?? "http_status"),
      responseBody: result.bodySnippet || null,
    };
    if (headers) deps.metrics.deliveryDuration.observe(result.durationMs / 1000);

    if (result.ok) {
      const done = await completions.submit({ id: d.id, lease: d.lease, endpointId: d.endpointId, now, attempt });
      deps.metrics.deliveries.inc({ outcome: done ? "succeeded" : "lease_lost" });
      if (done) deps.metrics.eventToDelivery.observe((now.getTime() - d.eventCreatedAt.getTime()) / 1000);
      return;
    }

    const gone = result.status === 410;
    const next = gone
      ? null
      : nextAttemptAt({
          attempt: d.attempt,
          now,
          schedule: deps.retryScheduleMs,
          status: result.status,
          retryAfter: result.retryAfter,
          random: deps.random,
        });
    const recorded = await transaction(deps.pool, (tx) => recordFailure(tx, deps, d, { now, next, gone, attempt }), retryOnce);
    if (recorded.disabled) deps.metrics.endpointsDisabled.inc();
    if (recorded.queued) deps.wake();
    deps.metrics.deliveries.inc({ outcome: recorded.outcome });
  };
}

/**
 * The failure and its attempt log, then the endpoint's run of failures: disabled at once by a
 * 410 Gone, or once it has lasted `disableAfterHours`. Nothing here acts outside the transaction
 * (the caller counts the metrics after the commit), so a conflict can safely run it again.
 */
async function recordFailure(
  tx: Db,
  deps: Pick<DeliverDeps, "disableAfterHours">,
  d: ClaimedDelivery,
  f: { now: Date; next: Date | null; gone: boolean; attempt: AttemptRecord },
): Promise<{ outcome: "lease_lost" | "retry_scheduled" | "failed"; disabled: boolean; queued: boolean }> {
  // Locks the endpoint's row, then the delivery's (the lock order in queue.ts).
  const status = await failDelivery(tx, {
    id: d.id,
    lease: d.lease,
    endpointId: d.endpointId,
    now: f.now,
    nextAttemptAt: f.next,
    attempt: f.attempt,
  });
  if (!status) return { outcome: "lease_lost", disabled: false, queued: false };
  const outcome = status === "pending" ? "retry_scheduled" : "failed";
  const endpoint = await markEndpointFailing(tx, d.endpointId, f.now);
  const failingForMs = endpoint?.failing_since ? f.now.getTime() - endpoint.failing_since.getTime() : 0;
  if (!endpoint || !(f.gone || failingForMs >= deps.disableAfterHours * 3_600_000)) return { outcome, disabled: false, queued: false };
  const reason = f.gone ? "The endpoint answered 410 Gone." : `The endpoint failed continuously for ${deps.disableAfterHours} hours.`;
  const { queued } = await disableEndpoint(tx, endpoint, reason, f.now);
  return { outcome, disabled: true, queued };
}

/**
 * Turns an endpoint off and records `endpoint.disabled` (delivered to the merchant's other
 * endpoints: `queued` when one is enabled).
 */
async function disableEndpoint(tx: Db, endpoint: EndpointRow, reason: string, now: Date): Promise<{ queued: boolean }> {
  const disabled = await setEndpointDisabled(tx, endpoint.id, reason, now);
  // Park what is still queued: it stays recoverable, and a dead endpoint stops costing attempts.
  await parkPendingDeliveries(tx, endpoint.id);
  return recordEvent(tx, { merchantId: endpoint.merchant_id, type: "endpoint.disabled", object: endpointOut(disabled), now });
}

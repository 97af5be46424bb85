/**
 * bench/verify: verifications per second of @lumenpay/webhooks beside standardwebhooks, svix and
 * stripe (constructEvent) on the same 1 KB payload, in the same run.
 */
import { randomBytes } from "node:crypto";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import Stripe from "stripe";
import { Webhook, signDelivery } from "@lumenpay/webhooks";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2000);

/** Runs `fn` for DURATION_MS after a warm-up; returns calls per second. */
async function rate(fn: () => unknown | Promise<unknown>): Promise<number> {
  const until = (ms: number) => performance.now() + ms;
  for (const end = until(300); performance.now() < end; ) await fn();
  let calls = 0;
  const start = performance.now();
  const end = start + DURATION_MS;
  while (performance.now() < end) {
    // Batches keep the clock reads out of the measurement.
    for (let i = 0; i < 100; i++) await fn();
    calls += 100;
  }
  return calls / ((performance.now() - start) / 1000);
}

export async function run(): Promise<void> {
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const event = { id: "evt_0123456789abcdefghijkl", type: "payment.confirmed", created_at: new Date().toISOString(), api_version: "2026-11-01", data: { object: { note: "" } } };
  event.data.object.note = "x".repeat(1024 - JSON.stringify(event).length);
  const body = JSON.stringify(event);
  const headers: Record<string, string> = { ...signDelivery({ id: event.id, timestamp: Math.floor(Date.now() / 1000), body, secrets: [secret] }) };

  const ours = new Webhook({ secrets: [secret] });
  const standard = new StandardWebhook(secret);
  const svix = new SvixWebhook(secret);
  const stripe = new Stripe("sk_test_unused");
  const stellarSignature = headers["stellar-signature"]!;
  // Every verifier must accept the delivery before it is timed.
  await ours.verify(body, headers);
  standard.verify(body, headers);
  svix.verify(body, headers);
  stripe.webhooks.constructEvent(body, stellarSignature, secret);

  console.log(`payload ${Buffer.byteLength(body)} bytes, one secret, ${DURATION_MS} ms per library`);
  const results: Array<[string, number]> = [
    ["@lumenpay/webhooks Webhook.verify (v1)", await rate(() => ours.verify(body, headers))],
    ["standardwebhooks Webhook.verify", await rate(() => standard.verify(body, headers))],
    ["svix Webhook.verify", await rate(() => svix.verify(body, headers))],
    ["stripe webhooks.constructEvent", await rate(() => stripe.webhooks.constructEvent(body, stellarSignature, secret))],
  ];
  const fastestOther = Math.max(...results.slice(1).map(([, r]) => r));
  for (const [name, r] of results) {
    console.log(`${name.padEnd(42)} ${r.toFixed(0).padStart(9)} verifications/s   ${(r / results[0]![1]).toFixed(2)}× ours`);
  }
  console.log(`ours / fastest other: ${(results[0]![1] / fastestOther).toFixed(2)}`);
}

/**
 * bench/verify: verifications per second of @lumenpay/webhooks beside standardwebhooks, svix and
 * stripe (constructEvent) on the same 1 KB payload, in the same run.
 */
import { randomBytes } from "node:crypto";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import Stripe from "stripe";
import { Webhook, signDelivery } from "@lumenpay/webhooks";
import { benchInt } from "../support/env.js";

const DURATION_MS = benchInt("BENCH_DURATION_MS", 2000);
const ROUNDS = 10;

/** Calls per second of `fn` over `ms`, in batches that keep the clock reads out of the measurement. */
async function rate(fn: () => unknown, ms: number): Promise<number> {
  let calls = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await fn();
    calls += 100;
  }
  return calls / ((performance.now() - start) / 1000);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Each library's median rate over ROUNDS rounds that take turns, so a burst of load from elsewhere
 * on the machine slows every library alike instead of the one that happened to be running.
 */
async function interleaved(verifiers: Array<() => unknown>): Promise<number[]> {
  for (const fn of verifiers) await rate(fn, 300);
  const rates: number[][] = verifiers.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, fn] of verifiers.entries()) rates[i]!.push(await rate(fn, DURATION_MS / ROUNDS));
  }
  return rates.map(median);
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

  console.log(`payload ${Buffer.byteLength(body)} bytes, one secret, ${DURATION_MS} ms per library in ${ROUNDS} interleaved rounds (median)`);
  const names = ["@lumenpay/webhooks Webhook.verify (v1)", "standardwebhooks Webhook.verify", "svix Webhook.verify", "stripe webhooks.constructEvent"];
  const rates = await interleaved([
    () => ours.verify(body, headers),
    () => standard.verify(body, headers),
    () => svix.verify(body, headers),
    () => stripe.webhooks.constructEvent(body, stellarSignature, secret),
  ]);
  const results = names.map((name, i): [string, number] => [name, rates[i]!]);
  const fastestOther = Math.max(...results.slice(1).map(([, r]) => r));
  for (const [name, r] of results) {
    console.log(`${name.padEnd(42)} ${r.toFixed(0).padStart(9)} verifications/s   ${(r / results[0]![1]).toFixed(2)}× ours`);
  }
  console.log(`ours / fastest other: ${(results[0]![1] / fastestOther).toFixed(2)}`);
}

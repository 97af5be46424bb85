import { describe, expect, it } from "vitest";
import { deadline, timing } from "../src/payments/matching.js";
import { transition } from "../src/payments/settlement.js";
import type { PaymentStatus } from "../src/payments/store.js";

/** The whole table of what one matched operation does to a payment (settlement.ts `transition`). */

const now = new Date("2026-03-01T12:10:00Z");
const closedAt = new Date("2026-03-01T11:59:57Z");
const expiredAt = new Date("2026-03-01T12:00:05Z");
const payment = (status: PaymentStatus, receivedStroops = 0n) => ({
  status,
  amountStroops: 100n,
  amountReceivedStroops: receivedStroops,
  confirmedAt: status === "confirmed" ? new Date("2026-03-01T11:50:00Z") : null,
  expiredAt: status === "expired" ? expiredAt : null,
});
const op = (amountStroops: bigint) => ({ amountStroops, closedAt });
const shown = (events: Array<{ type: string; status: string }>) => events.map((e) => `${e.type}:${e.status}`);

describe("transition", () => {
  it.each<[string, PaymentStatus, bigint, bigint, "on_time" | "late", PaymentStatus, bigint, string[]]>([
    ["full, pending", "pending", 0n, 100n, "on_time", "confirmed", 100n, ["payment.confirmed:confirmed"]],
    ["over, pending", "pending", 0n, 150n, "on_time", "confirmed", 150n, ["payment.confirmed:confirmed"]],
    ["short, pending", "pending", 0n, 40n, "on_time", "partially_paid", 40n, ["payment.partially_paid:partially_paid"]],
    ["the rest, partially paid", "partially_paid", 40n, 60n, "on_time", "confirmed", 100n, ["payment.confirmed:confirmed"]],
    ["full, expired before it was seen", "expired", 0n, 100n, "on_time", "confirmed", 100n, ["payment.confirmed:confirmed"]],
    ["short, expired before it was seen", "expired", 0n, 40n, "on_time", "expired", 40n, ["payment.partially_paid:partially_paid", "payment.expired:expired"]],
    ["full, canceled before it was seen", "canceled", 0n, 100n, "on_time", "confirmed", 100n, ["payment.confirmed:confirmed"]],
    ["short, canceled before it was seen", "canceled", 0n, 40n, "on_time", "canceled", 40n, ["payment.partially_paid:partially_paid", "payment.canceled:canceled"]],
    ["late, expired", "expired", 40n, 60n, "late", "expired", 40n, ["payment.late_payment_received:expired"]],
    ["late, canceled", "canceled", 0n, 60n, "late", "canceled", 0n, ["payment.late_payment_received:canceled"]],
    ["late, confirmed", "confirmed", 100n, 60n, "late", "confirmed", 100n, ["payment.late_payment_received:confirmed"]],
    ["late, still pending", "pending", 0n, 100n, "late", "expired", 0n, ["payment.expired:expired", "payment.late_payment_received:expired"]],
    ["late, still partially paid", "partially_paid", 40n, 60n, "late", "expired", 40n, ["payment.expired:expired", "payment.late_payment_received:expired"]],
  ])("%s", (_name, status, received, amount, when, nextStatus, nextReceived, events) => {
    const next = transition(payment(status, received), op(amount), when, now);
    expect(next.status).toBe(nextStatus);
    expect(next.amountReceivedStroops).toBe(nextReceived);
    expect(shown(next.events)).toEqual(events);
  });

  it("dates a confirmation by the ledger, keeps the history timestamps, and dates an expiry it causes now", () => {
    expect(transition(payment("expired"), op(100n), "on_time", now)).toMatchObject({ confirmedAt: closedAt, expiredAt });
    expect(transition(payment("pending"), op(100n), "late", now)).toMatchObject({ confirmedAt: null, expiredAt: now });
    expect(transition(payment("confirmed", 100n), op(1n), "late", now).confirmedAt).toEqual(new Date("2026-03-01T11:50:00Z"));
  });
});

describe("timing", () => {
  const expiresAt = new Date("2026-03-01T12:00:00Z");
  it("is on time up to and including the deadline: expires_at, or canceled_at when earlier", () => {
    expect(timing({ status: "pending", expiresAt, canceledAt: null }, expiresAt)).toBe("on_time");
    expect(timing({ status: "expired", expiresAt, canceledAt: null }, new Date(expiresAt.getTime() + 1000))).toBe("late");
    const canceledAt = new Date("2026-03-01T11:30:00Z");
    expect(deadline({ expiresAt, canceledAt })).toEqual(canceledAt);
    expect(timing({ status: "canceled", expiresAt, canceledAt }, new Date("2026-03-01T11:29:59Z"))).toBe("on_time");
    expect(timing({ status: "canceled", expiresAt, canceledAt }, new Date("2026-03-01T11:30:01Z"))).toBe("late");
  });

  it("is late for any operation after the payment was fully paid", () => {
    expect(timing({ status: "confirmed", expiresAt, canceledAt: null }, closedAt)).toBe("late");
  });
});

import { describe, expect, it } from "vitest";
import { Networks } from "@stellar/stellar-sdk";
import { HttpError } from "../src/http/errors.js";
import { formatAmount, parseAmount } from "../src/stellar/amount.js";
import { parseMemo, randomIdMemo, type MemoType } from "../src/stellar/memo.js";
import { sep7PayUri, SEP7_MSG_MAX_LENGTH } from "../src/stellar/sep7.js";

const DEST = "GCALNQQBXAPZ2WIRSDDBMSTAKCUH5SG6U76YBFLQLIXJTF7FE5AX7AOO";
const ISSUER = "GCRCUE2C5TBNIPYHMEP7NK5RWTT2WBSZ75CMARH7GDOHDDCQH3XANFOB";

function rejection(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("parseAmount / formatAmount", () => {
  it.each([
    ["0.0000001", 1n],
    ["12.50", 125_000_000n],
    ["12", 120_000_000n],
    ["007.5", 75_000_000n],
    ["922337203685.4775807", 9_223_372_036_854_775_807n],
  ])("accepts %j as %s stroops", (input, stroops) => {
    expect(parseAmount(input, "amount")).toBe(stroops);
  });

  it.each([
    "0.00000001", "0", "0.0000000", "-1", "+1", "1e3", " 1", "1 ", "1.", ".5", "1,5", "", "0x10", "١",
    "922337203685.4775808", "99999999999999999999999",
  ])("rejects %j with invalid_amount", (input) => {
    const error = rejection(() => parseAmount(input, "amount"));
    expect(error).toMatchObject({ status: 400, code: "invalid_amount", param: "amount" });
  });

  it.each([
    [1n, "0.0000001"],
    [125_000_000n, "12.5"],
    [120_000_000n, "12"],
    [9_223_372_036_854_775_807n, "922337203685.4775807"],
  ])("formats %s stroops as %j", (stroops, text) => {
    expect(formatAmount(stroops)).toBe(text);
  });
});

describe("parseMemo", () => {
  it.each<[MemoType, string, string]>([
    ["text", "é".repeat(14), "é".repeat(14)],
    ["text", "order 42 🚀", "order 42 🚀"],
    ["text", "x".repeat(28), "x".repeat(28)],
    ["id", "0", "0"],
    ["id", "18446744073709551615", "18446744073709551615"],
    ["id", "00042", "42"],
    ["hash", "AB".repeat(32), "ab".repeat(32)],
  ])("accepts %s memo %j as %j", (type, value, canonical) => {
    expect(parseMemo(type, value, "memo")).toEqual({ type, value: canonical });
  });

  it.each<[MemoType, string]>([
    ["text", "é".repeat(15)], // 30 bytes though only 15 characters
    ["text", "🚀".repeat(8)], // 4 bytes each: 32
    ["text", "x".repeat(29)],
    ["text", ""],
    ["text", "a\u0000b"],
    ["text", "\uD800abc"],
    ["id", "18446744073709551616"],
    ["id", "-1"],
    ["id", "1.5"],
    ["id", "1e3"],
    ["id", ""],
    ["hash", "ab".repeat(31)],
    ["hash", "zz".repeat(32)],
    ["hash", "ab".repeat(33)],
  ])("rejects %s memo %j", (type, value) => {
    expect(rejection(() => parseMemo(type, value, "memo"))).toMatchObject({ status: 400, code: "invalid_memo", param: "memo" });
  });

  it("generates id memos in the uint64 range, all different, across refills of the entropy pool", () => {
    // 8 bytes each from a 4 KB pool: 1 200 memos refill it twice.
    const memos = Array.from({ length: 1200 }, randomIdMemo);
    for (const memo of memos) {
      expect(memo.type).toBe("id");
      expect(parseMemo("id", memo.value, "memo").value).toBe(memo.value);
    }
    expect(new Set(memos.map((m) => m.value)).size).toBe(1200);
    // Uniform over 64 bits: about half have the top bit set (outside 500–700 has odds under 1e-8).
    const high = memos.filter((m) => BigInt(m.value) >= 2n ** 63n).length;
    expect(high).toBeGreaterThan(500);
    expect(high).toBeLessThan(700);
  });
});

describe("sep7PayUri", () => {
  const parse = (uri: string) => {
    expect(uri.startsWith("web+stellar:pay?")).toBe(true);
    // The query is parsed by the same rules a wallet uses; `+` would decode to a space, so there must be none.
    const query = uri.slice("web+stellar:pay?".length);
    expect(query).not.toMatch(/[ +]/);
    return new URLSearchParams(query);
  };

  it("encodes an issued-asset payment with a text memo on testnet", () => {
    const uri = sep7PayUri({
      destination: DEST,
      amount: "120.1234567",
      asset: { code: "USDC", issuer: ISSUER },
      memo: { type: "text", value: "café & co #1" },
      msg: "Order 42: 2× coffee (étoile) — thanks!",
      networkPassphrase: Networks.TESTNET,
    });
    const p = parse(uri);
    expect([...p.keys()]).toEqual(["destination", "amount", "asset_code", "asset_issuer", "memo", "memo_type", "msg", "network_passphrase"]);
    expect(p.get("destination")).toBe(DEST);
    expect(p.get("amount")).toBe("120.1234567");
    expect(p.get("asset_code")).toBe("USDC");
    expect(p.get("asset_issuer")).toBe(ISSUER);
    expect(p.get("memo")).toBe("café & co #1");
    expect(p.get("memo_type")).toBe("MEMO_TEXT");
    expect(p.get("msg")).toBe("Order 42: 2× coffee (étoile) — thanks!");
    expect(p.get("network_passphrase")).toBe(Networks.TESTNET);
    // Spaces are %20 and RFC 3986 sub-delimiters are escaped, as in the spec's examples.
    expect(uri).toContain("memo=caf%C3%A9%20%26%20co%20%231&");
    expect(uri).toContain("%28%C3%A9toile%29");
  });

  it("base64-encodes a hash memo and omits the native asset and the public network", () => {
    const hex = "00ff".repeat(16);
    const p = parse(
      sep7PayUri({
        destination: DEST,
        amount: "1",
        asset: { code: "XLM", issuer: null },
        memo: { type: "hash", value: hex },
        networkPassphrase: Networks.PUBLIC,
      }),
    );
    expect([...p.keys()]).toEqual(["destination", "amount", "memo", "memo_type"]);
    expect(p.get("memo_type")).toBe("MEMO_HASH");
    expect(Buffer.from(p.get("memo")!, "base64").toString("hex")).toBe(hex);
    expect(p.get("memo")).toBe(Buffer.from(hex, "hex").toString("base64"));
  });

  it("passes an id memo through and cuts msg to 300 characters without splitting an emoji", () => {
    const p = parse(
      sep7PayUri({
        destination: DEST,
        amount: "5",
        asset: { code: "XLM", issuer: null },
        memo: { type: "id", value: "18446744073709551615" },
        msg: `${"a".repeat(299)}🚀🚀`,
        networkPassphrase: Networks.PUBLIC,
      }),
    );
    expect(p.get("memo")).toBe("18446744073709551615");
    expect(p.get("memo_type")).toBe("MEMO_ID");
    expect(p.get("msg")).toBe("a".repeat(299));
    expect(p.get("msg")!.length).toBeLessThanOrEqual(SEP7_MSG_MAX_LENGTH);
  });
});

import { describe, expect, it } from "vitest";
import { checkAddress, parseCidrList, validateWebhookUrl, type CidrList } from "../src/webhooks/ssrf.js";

function cidrs(text: string): CidrList {
  const parsed = parseCidrList(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe("checkAddress", () => {
  const refused = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "198.19.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "192.88.99.1",
    "198.51.100.7",
    "203.0.113.9",
    "::",
    "::1",
    "fc00::1",
    "fd12::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "100::1",
    "2001:db8::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::FFFF:A9FE:A9FE",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "::a00:1",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::808:808",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::",
    "2002:c0a8:101::1",
    "4000::1",
    "not-an-ip",
    "",
  ];
  it.each(refused)("refuses %s", (address) => {
    const verdict = checkAddress(address, []);
    expect(verdict.allowed).toBe(false);
  });

  it("names the rule and the embedded address in the reason", () => {
    expect(checkAddress("2002:a9fe:a9fe::", [])).toEqual({
      allowed: false,
      reason: "2002:a9fe:a9fe:: is 6to4 169.254.169.254, which is link-local (169.254.0.0/16)",
    });
    expect(checkAddress("10.0.0.1", [])).toEqual({ allowed: false, reason: "10.0.0.1 is private (10.0.0.0/8)" });
  });

  it.each(["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "100.128.0.1", "172.32.0.1"])(
    "allows public %s",
    (address) => {
      expect(checkAddress(address, [])).toEqual({ allowed: true });
    },
  );

  it("lets WEBHOOK_ALLOWED_CIDRS override the rules, and nothing else", () => {
    const allowed = cidrs("127.0.0.0/8, fd00::/8");
    expect(checkAddress("127.0.0.1", allowed).allowed).toBe(true);
    expect(checkAddress("::ffff:127.0.0.1", allowed).allowed).toBe(true);
    expect(checkAddress("fd12::1", allowed).allowed).toBe(true);
    expect(checkAddress("::1", allowed).allowed).toBe(false);
    expect(checkAddress("10.0.0.1", allowed).allowed).toBe(false);
    expect(checkAddress("169.254.169.254", allowed).allowed).toBe(false);
  });
});

describe("parseCidrList", () => {
  it("parses IPv4 and IPv6 ranges, bare hosts and an empty list", () => {
    const parsed = parseCidrList(" 127.0.0.0/8,::1/128 ,10.0.0.5,");
    expect(parsed.ok && parsed.value.map((c) => [c.text, c.family, c.prefix])).toEqual([
      ["127.0.0.0/8", 4, 8],
      ["::1/128", 6, 128],
      ["10.0.0.5", 4, 32],
    ]);
    expect(parseCidrList("")).toEqual({ ok: true, value: [] });
    const bare = cidrs("10.0.0.5");
    expect(checkAddress("10.0.0.5", bare).allowed).toBe(true);
    expect(checkAddress("10.0.0.6", bare).allowed).toBe(false);
  });

  it.each([
    ["localhost", '"localhost" is not a CIDR such as 10.0.0.0/8 or fd00::/8'],
    ["10.0.0.0/33", '"10.0.0.0/33" has an invalid prefix length (IPv4 allows 0 to 32)'],
    ["::/129", '"::/129" has an invalid prefix length (IPv6 allows 0 to 128)'],
    ["10.0.0.0/-1", '"10.0.0.0/-1" has an invalid prefix length (IPv4 allows 0 to 32)'],
    ["10.0.0.0/8/8", '"10.0.0.0/8/8" is not a CIDR such as 10.0.0.0/8 or fd00::/8'],
    ["010.0.0.0/8", '"010.0.0.0/8" is not a CIDR such as 10.0.0.0/8 or fd00::/8'],
    ["10.1.0.0/8", '"10.1.0.0/8" has host bits set; did you mean 10.0.0.0/8?'],
    ["fd00::1/8", '"fd00::1/8" has host bits set; did you mean fd00::/8?'],
  ])("rejects %s with a clear error", (text, error) => {
    expect(parseCidrList(`127.0.0.0/8,${text}`)).toEqual({ ok: false, error });
  });
});

describe("validateWebhookUrl", () => {
  it("accepts an https URL with a name", () => {
    const result = validateWebhookUrl("https://hooks.example.com/stellar?x=1", { allowHttp: false });
    expect(result.ok && result.url.href).toBe("https://hooks.example.com/stellar?x=1");
  });

  it.each([
    ["not a url", "invalid_url"],
    ["ftp://hooks.example.com/", "invalid_url"],
    ["file:///etc/passwd", "invalid_url"],
    ["http://hooks.example.com/", "insecure_url"],
    ["https://user:pass@hooks.example.com/", "url_credentials"],
    ["https://user@hooks.example.com/", "url_credentials"],
    ["https://127.0.0.1/", "forbidden_address"],
    ["https://169.254.169.254/latest/meta-data", "forbidden_address"],
    ["https://[::1]/", "forbidden_address"],
    ["https://[::ffff:10.0.0.1]/", "forbidden_address"],
    ["https://[64:ff9b::7f00:1]/", "forbidden_address"],
  ] as const)("refuses %s as %s", (url, code) => {
    const result = validateWebhookUrl(url, { allowHttp: false });
    expect(result.ok ? undefined : result.code).toBe(code);
  });

  it.each([
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "https://134744072/",
    "https://0x8.0x8.0x8.0x8/",
  ])("refuses the non-canonical IPv4 spelling %s even when the address is allowed", (url) => {
    const result = validateWebhookUrl(url, { allowHttp: true, allowedCidrs: cidrs("0.0.0.0/0") });
    expect(result).toMatchObject({ ok: false, code: "forbidden_address" });
    expect(result.ok ? "" : result.message).toMatch(/decimal, octal, hex/);
  });

  it("accepts http and allowed addresses when configured to", () => {
    const options = { allowHttp: true, allowedCidrs: cidrs("127.0.0.0/8,::1/128") };
    expect(validateWebhookUrl("http://127.0.0.1:8080/hook", options).ok).toBe(true);
    expect(validateWebhookUrl("http://[::1]:8080/hook", options).ok).toBe(true);
    expect(validateWebhookUrl("https://8.8.8.8/hook", { allowHttp: false }).ok).toBe(true);
    expect(validateWebhookUrl("http://10.0.0.1/hook", options)).toMatchObject({ ok: false, code: "forbidden_address" });
  });
});

import { isIPv4, isIPv6 } from "node:net";

/**
 * Which addresses a webhook may be delivered to. Merchants choose webhook URLs, so without this
 * policy they could make the server POST to its own loopback services, the cloud metadata
 * endpoint (169.254.169.254) or anything else on the private network.
 */

export interface Cidr {
  /** As the operator wrote it, for messages. */
  readonly text: string;
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Ranges an operator lets through despite the policy (`WEBHOOK_ALLOWED_CIDRS`). */
export type CidrList = readonly Cidr[];

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

interface Ip {
  family: 4 | 6;
  bytes: Uint8Array;
}

function parseIpv4(text: string): Uint8Array | undefined {
  // isIPv4 accepts only canonical dotted decimal: no octal, hex, or fewer than four parts.
  return isIPv4(text) ? Uint8Array.from(text.split("."), Number) : undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!isIPv6(text)) return undefined;
  // The zone ("%eth0") picks an interface; it does not change which address is reached.
  let s = text.replace(/%.*$/, "").toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [, a, b, c, d] = dotted.map(Number) as [number, number, number, number, number];
    s = `${s.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = s.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill("0");
  const bytes = new Uint8Array(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

function parseIp(text: string): Ip | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(text);
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

function parseCidr(text: string): { ok: true; value: Cidr } | { ok: false; error: string } {
  const [addressText = "", prefixText, extra] = text.split("/");
  const ip = parseIp(addressText);
  if (!ip || extra !== undefined || addressText.includes("%")) {
    return { ok: false, error: `"${text}" is not a CIDR such as 10.0.0.0/8 or fd00::/8` };
  }
  const maxPrefix = ip.bytes.length * 8;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (prefixText !== undefined && (!/^\d{1,3}$/.test(prefixText) || prefix > maxPrefix)) {
    return { ok: false, error: `"${text}" has an invalid prefix length (IPv${ip.family} allows 0 to ${maxPrefix})` };
  }
  const cidr: Cidr = { text, family: ip.family, bytes: ip.bytes, prefix };
  // Host bits usually mean a typo (10.1.0.0/8 meant as /16?), so make the operator say which.
  const network = maskTo(ip.bytes, prefix);
  if (!network.every((b, i) => b === ip.bytes[i])) {
    return { ok: false, error: `"${text}" has host bits set; did you mean ${formatNetwork(cidr, network)}?` };
  }
  return { ok: true, value: cidr };
}

function maskTo(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((b, i) => {
    const bits = Math.min(8, Math.max(0, prefix - 8 * i));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

function formatNetwork(cidr: Cidr, network: Uint8Array): string {
  if (cidr.family === 4) return `${network.join(".")}/${cidr.prefix}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((network[i]! << 8) | network[i + 1]!).toString(16));
  // WHATWG URL prints IPv6 in its canonical compressed form (RFC 5952).
  return `${new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1)}/${cidr.prefix}`;
}

/** Parses `WEBHOOK_ALLOWED_CIDRS`: comma-separated CIDRs; a bare address means that one host. */
export function parseCidrList(text: string): { ok: true; value: CidrList } | { ok: false; error: string } {
  const value: Cidr[] = [];
  for (const part of text.split(",").map((p) => p.trim())) {
    if (part === "") continue;
    const parsed = parseCidr(part);
    if (!parsed.ok) return parsed;
    value.push(parsed.value);
  }
  return { ok: true, value };
}

function contains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family !== ip.family) return false;
  const masked = maskTo(ip.bytes, cidr.prefix);
  return masked.every((b, i) => b === cidr.bytes[i]);
}

/** For the built-in tables below, which are constants: a typo there is a programming error. */
function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function rules(entries: Array<[string, string]>): Array<{ cidr: Cidr; reason: string }> {
  return entries.map(([text, reason]) => ({ cidr: cidr(text), reason }));
}

const IPV4_FORBIDDEN = rules([
  ["0.0.0.0/8", "unspecified (this network)"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "6to4 relay anycast"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["255.255.255.255/32", "broadcast"],
  ["240.0.0.0/4", "reserved"],
]);

const IPV6_FORBIDDEN = rules([
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fc00::/7", "unique-local"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "site-local"],
  ["ff00::/8", "multicast"],
  ["100::/64", "discard-only"],
  // Teredo hides the client's IPv4 (XOR-obfuscated) behind a relay; no real receiver lives there,
  // and decoding it would only invite mistakes, so the whole prefix is refused.
  ["2001::/32", "Teredo tunnel"],
  ["2001:db8::/32", "documentation"],
  // Local-use NAT64 (RFC 8215) translates into a network the operator runs: never public.
  ["64:ff9b:1::/48", "local-use NAT64"],
]);

/** Prefixes whose addresses carry an IPv4 address, and the byte offset where it sits. */
const IPV4_EMBEDDINGS = (
  [
    ["::ffff:0:0/96", "IPv4-mapped", 12],
    ["::/96", "IPv4-compatible", 12],
    ["64:ff9b::/96", "NAT64", 12],
    ["2002::/16", "6to4", 2],
  ] as const
).map(([text, name, offset]) => ({ cidr: cidr(text), name, offset }));

const GLOBAL_UNICAST = cidr("2000::/3");

function embeddedIpv4(ip: Ip): { ip: Ip; via: string } | undefined {
  if (ip.family !== 6) return undefined;
  const embedding = IPV4_EMBEDDINGS.find((e) => contains(e.cidr, ip));
  if (!embedding) return undefined;
  const bytes = ip.bytes.slice(embedding.offset, embedding.offset + 4);
  return { ip: { family: 4, bytes }, via: embedding.name };
}

/**
 * Decides whether a webhook may connect to `address` (an IP, as DNS returned it). Anything that
 * is not a well-formed IP is refused. `allowed` wins over every rule, so an operator can reach
 * an internal receiver (or 127.0.0.1 in tests) on purpose.
 */
export function checkAddress(address: string, allowed: CidrList): AddressVerdict {
  const ip = parseIp(address);
  if (!ip) return { allowed: false, reason: `"${address}" is not an IP address` };
  const embedded = embeddedIpv4(ip);
  if (allowed.some((c) => contains(c, ip) || (embedded !== undefined && contains(c, embedded.ip)))) {
    return { allowed: true };
  }
  const own = (ip.family === 4 ? IPV4_FORBIDDEN : IPV6_FORBIDDEN).find((r) => contains(r.cidr, ip));
  if (own) return { allowed: false, reason: `${address} is ${own.reason} (${own.cidr.text})` };
  if (embedded) {
    const inner = IPV4_FORBIDDEN.find((r) => contains(r.cidr, embedded.ip));
    if (inner) {
      const v4 = embedded.ip.bytes.join(".");
      return { allowed: false, reason: `${address} is ${embedded.via} ${v4}, which is ${inner.reason} (${inner.cidr.text})` };
    }
    return { allowed: true };
  }
  // Only 2000::/3 is handed out for global unicast; the rest of IPv6 is reserved or special.
  if (ip.family === 6 && !contains(GLOBAL_UNICAST, ip)) {
    return { allowed: false, reason: `${address} is outside global unicast (2000::/3)` };
  }
  return { allowed: true };
}

export type WebhookUrlErrorCode = "invalid_url" | "insecure_url" | "url_credentials" | "forbidden_address";

export type WebhookUrlResult =
  | { ok: true; url: URL }
  | { ok: false; code: WebhookUrlErrorCode; message: string };

/** The host as typed: WHATWG URL rewrites `0x7f.1` to `127.0.0.1`, and we want to see the former. */
function rawHost(input: string): string | undefined {
  const authority = /^[a-z][a-z\d+.-]*:[/\\]*([^/\\?#]*)/i.exec(input.trim().replace(/[\t\n\r]/g, ""))?.[1];
  return authority
    ?.slice(authority.lastIndexOf("@") + 1)
    .replace(/:\d*$/, "")
    .toLowerCase();
}

/**
 * Checks a webhook URL when an endpoint is created or changed. Names are not resolved here (that
 * happens, and is checked again, on every connection); IP literals are checked now so the
 * merchant hears about the mistake immediately.
 */
export function validateWebhookUrl(
  input: string,
  options: { allowHttp: boolean; allowedCidrs?: CidrList },
): WebhookUrlResult {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, code: "invalid_url", message: "not a valid absolute URL" };
  }
  if (url.protocol === "http:" && !options.allowHttp) {
    return { ok: false, code: "insecure_url", message: "webhook URLs must use https" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, code: "invalid_url", message: `unsupported scheme ${url.protocol} (use https)` };
  }
  if (url.username !== "" || url.password !== "") {
    return { ok: false, code: "url_credentials", message: "webhook URLs must not contain a username or password" };
  }
  if (url.hostname === "") return { ok: false, code: "invalid_url", message: "the URL has no host" };

  const literal = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  if (isIPv4(literal) && rawHost(input) !== literal) {
    return {
      ok: false,
      code: "forbidden_address",
      message: `write the IPv4 address as ${literal}; decimal, octal, hex and shortened spellings are refused`,
    };
  }
  if (isIPv4(literal) || isIPv6(literal)) {
    const verdict = checkAddress(literal, options.allowedCidrs ?? []);
    if (!verdict.allowed) return { ok: false, code: "forbidden_address", message: verdict.reason };
  }
  return { ok: true, url };
}

import { BlockList, isIP } from "node:net";
import type { Request, RequestHandler } from "express";

/** One ALLOWED_IPS entry: an address and prefix length; a bare address is a /32 or /128. */
export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

export interface AllowList {
  allows(ip: string): boolean;
}

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
const PROXY_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

/**
 * An IPv4 client of a dual-stack ("::") socket shows up as ::ffff:192.0.2.1; the plain IPv4 form
 * lets IPv4 rules match it and gives logs and rate-limit keys one spelling per client.
 */
export function normalizeIp(ip: string): string {
  return MAPPED_IPV4.exec(ip)?.[1] ?? ip;
}

/** The client's address: the socket's, or the proxy-reported one as far as TRUST_PROXY allows. */
export function clientIp(req: Request): string {
  return normalizeIp(req.ip ?? req.socket.remoteAddress ?? "");
}

export function parseCidr(text: string): Cidr | undefined {
  const [address = "", prefixText, ...rest] = text.split("/");
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/**
 * Express's "trust proxy" value from TRUST_PROXY: a boolean, a hop count, or addresses/CIDRs and
 * the names Express knows. Checked here because Express would only throw once the app is built.
 */
export function parseTrustProxy(value: string): boolean | number | string | undefined {
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (/^\d+$/.test(value)) return Number(value);
  const items = value.split(",").map((item) => item.trim());
  return items.every((item) => PROXY_NAMES.has(item) || parseCidr(item)) ? items.join(",") : undefined;
}

/** The senders allowed by ALLOWED_IPS, or undefined when it is empty and everyone may send. */
export function createAllowList(cidrs: readonly Cidr[]): AllowList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const { address, prefix, family } of cidrs) list.addSubnet(address, prefix, family);
  return {
    allows(ip) {
      const address = normalizeIp(ip);
      const version = isIP(address);
      return version !== 0 && list.check(address, version === 4 ? "ipv4" : "ipv6");
    },
  };
}

/** 403 for a sender outside the allow-list, before its body is read. */
export function requireAllowedIp(allowList: AllowList): RequestHandler {
  return (req, res, next) => {
    if (allowList.allows(clientIp(req))) return next();
    res.status(403).json({ error: "forbidden", message: "This address may not send webhooks to this endpoint." });
  };
}

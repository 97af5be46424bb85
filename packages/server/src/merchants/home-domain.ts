import { randomBytes } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import type { Clock } from "../clock.js";
import type { Config } from "../config.js";
import { transaction, type Db, type Pool } from "../db/pool.js";
import { badRequest, HttpError } from "../http/errors.js";
import { DNS_DEADLINE_MS, type TxtAnswer, type TxtLookup } from "./dns.js";
import * as store from "./store.js";
import type { HomeDomain, Merchant } from "./store.js";

/**
 * Proof of control of a home domain. A merchant's stellar.toml is served for a Host only once the
 * merchant has published the TXT record `lumenpay-verification=<token>` on that domain — or on
 * `_lumenpay.<domain>`, for a name that is a CNAME and so can hold no other record — and asked
 * Lumenpay to check it. The token is random per merchant and domain; changing the domain starts over.
 * Several merchants may claim a domain; one at most holds it verified (a unique index).
 */

/** What a claim is checked against: the platform's own host, and whether localhost is trusted (outside production). */
export type HomeDomainRules = Pick<Config, "publicBaseUrl" | "production">;

const RECORD_PREFIX = "lumenpay-verification=";

export interface HomeDomainVerificationOut {
  status: "pending" | "verified";
  token: string;
  /** The TXT record that proves control. */
  record: { type: "TXT"; name: string; value: string };
  verified_at: string | null;
}

/** DNS names have no port: `pay.example.com:8443` is proven on `pay.example.com`. */
const recordName = (domain: string) => domain.split(":")[0]!;
const recordValue = (token: string) => `${RECORD_PREFIX}${token}`;
const isLocalhost = (domain: string) => recordName(domain) === "localhost";

export function homeDomainVerificationOut(claim: HomeDomain | null): HomeDomainVerificationOut | null {
  if (!claim) return null;
  return {
    status: claim.verifiedAt ? "verified" : "pending",
    token: claim.token,
    record: { type: "TXT", name: recordName(claim.name), value: recordValue(claim.token) },
    verified_at: claim.verifiedAt?.toISOString() ?? null,
  };
}

/** PUBLIC_BASE_URL's host, with and without its port (the scheme's default when it names none). */
function platformHosts(publicBaseUrl: string): string[] {
  const url = new URL(publicBaseUrl);
  return [url.hostname, `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`];
}

/**
 * Whether a request for `host` may be answered with a merchant's file at all: never for the platform's
 * own host (a row may predate a change of PUBLIC_BASE_URL), never for localhost in production, where
 * anyone can send `Host: localhost`.
 */
export function mayServeHost(host: string, rules: HomeDomainRules): boolean {
  return !platformHosts(rules.publicBaseUrl).includes(host) && !(rules.production && isLocalhost(host));
}

/** 400 when `domain` is the platform's own host: it is Lumenpay's, no merchant's. */
function refusePlatformHost(domain: string, rules: HomeDomainRules): void {
  if (platformHosts(rules.publicBaseUrl).includes(domain)) {
    throw badRequest("home_domain_reserved", `${domain} is this Lumenpay server's own host (PUBLIC_BASE_URL); no merchant can claim it.`, "home_domain");
  }
}

/** A new claim on `name`, with a fresh token: verified at `verifiedAt`, or pending (null). */
const newClaim = (name: string, verifiedAt: Date | null): HomeDomain => ({ name, token: randomBytes(16).toString("hex"), verifiedAt });

/** A pending claim on `name`: safe without the platform's rules, as a pending domain is never served. */
export const pendingHomeDomain = (name: string | null): HomeDomain | null => (name === null ? null : newClaim(name, null));

/**
 * The claim after asking for `requested`: the current one when the domain is unchanged (its proof
 * stands), none for null, else a new claim with a new token. A new claim needs no proof, and is verified
 * at once, for localhost outside production (development) and for any other domain the operator sets
 * (`byOperator`: the CLI, trusted as it is with accounts).
 */
export function nextHomeDomain(
  current: HomeDomain | null,
  requested: string | null,
  { rules, byOperator, now }: { rules: HomeDomainRules; byOperator: boolean; now: Date },
): HomeDomain | null {
  if (requested === null) return null;
  if (current?.name === requested) return current;
  refusePlatformHost(requested, rules);
  const provenAlready = isLocalhost(requested) ? !rules.production : byOperator;
  return newClaim(requested, provenAlready ? now : null);
}

const homeDomainTaken = () => new HttpError(409, "home_domain_taken", "Another merchant has proven control of this home_domain.", "home_domain");

/** A write refused by the unique index on verified home domains: another merchant got there first. */
function isHomeDomainTaken(error: unknown): boolean {
  const e = error as { code?: string; constraint?: string };
  return e.code === "23505" && e.constraint === "merchants_verified_home_domain_idx";
}

/** Runs `write`, turning a verified home domain taken meanwhile (the unique index) into its 409. */
export async function refusingTakenHomeDomain<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isHomeDomainTaken(error)) throw homeDomainTaken();
    throw error;
  }
}

async function refuseHeldElsewhere(db: Db, merchantId: string, domain: string): Promise<void> {
  const holder = await store.getMerchantByVerifiedHomeDomain(db, domain);
  if (holder && holder.id !== merchantId) throw homeDomainTaken();
}

/** Writes a changed claim in `tx`; 409 `home_domain_taken` when another merchant holds that domain verified. */
export async function saveHomeDomain(tx: Db, merchantId: string, claim: HomeDomain | null): Promise<void> {
  if (claim) await refuseHeldElsewhere(tx, merchantId, claim.name);
  await store.setHomeDomain(tx, merchantId, claim);
}

function recordMissing(claim: HomeDomain, answers: TxtAnswer[]): HttpError {
  const name = recordName(claim.name);
  const value = recordValue(claim.token);
  const otherToken = answers.some((a) => "records" in a && a.records.some((r) => r.startsWith(RECORD_PREFIX)));
  return new HttpError(
    422,
    "home_domain_record_missing",
    `No TXT record "${value}" on ${name} yet. Create a TXT record named ${name} (or _lumenpay.${name}) with the value ${value}, ` +
      "then verify again; new records can take a few minutes to appear." +
      (otherToken ? ` The ${RECORD_PREFIX}… record found there holds another token: the token changes whenever home_domain changes.` : ""),
    "home_domain",
  );
}

function dnsUnavailable(claim: HomeDomain, failure: string): HttpError {
  const why = failure === "ETIMEOUT" || failure === "ECANCELLED" ? `no answer within ${DNS_DEADLINE_MS / 1000} s` : failure;
  return new HttpError(502, "dns_unavailable", `DNS could not be asked about ${recordName(claim.name)} (${why}); nothing changed, try again later.`);
}

export interface HomeDomainCheck {
  rules: HomeDomainRules;
  lookupTxt: TxtLookup;
  clock: Clock;
  log: FastifyBaseLogger;
}

/**
 * Looks for the claim's TXT record now and marks the claim verified. 422 `home_domain_record_missing`
 * naming the record to create, 502 `dns_unavailable` when DNS did not answer, 409 `home_domain_taken`
 * when another merchant proved it first. An already verified claim is returned as it is.
 */
export async function verifyHomeDomain(pool: Pool, merchant: Merchant, { rules, lookupTxt, clock, log }: HomeDomainCheck): Promise<Merchant> {
  const claim = merchant.homeDomain;
  if (!claim) throw badRequest("home_domain_not_set", "There is no home_domain to verify; set one with PATCH /v1/merchant first.", "home_domain");
  if (claim.verifiedAt) return merchant;
  refusePlatformHost(claim.name, rules);
  await refuseHeldElsewhere(pool, merchant.id, claim.name);

  const name = recordName(claim.name);
  const answers = await lookupTxt([name, `_lumenpay.${name}`]);
  if (!answers.some((a) => "records" in a && a.records.includes(recordValue(claim.token)))) {
    const failed = answers.find((a): a is { failure: string } => "failure" in a);
    if (!failed) throw recordMissing(claim, answers);
    log.warn({ homeDomain: name, dnsError: failed.failure }, "home domain check: DNS did not answer");
    throw dnsUnavailable(claim, failed.failure);
  }
  // Only if the claim is still the one checked: a domain changed meanwhile has a new token to prove.
  const marked = await refusingTakenHomeDomain(() =>
    transaction(pool, async (tx) => {
      const changed = await store.markHomeDomainVerified(tx, merchant.id, claim, clock.now());
      if (changed) await store.notifyMerchantChanged(tx, merchant.id);
      return changed;
    }),
  );
  if (!marked) throw new HttpError(409, "home_domain_changed", "home_domain changed while it was being verified; verify it again.", "home_domain");
  return (await store.getMerchant(pool, merchant.id))!;
}

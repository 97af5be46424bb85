import { createHmac } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../clock.js";
import type { Pool } from "../db/pool.js";
import { HttpError } from "../http/errors.js";
import { hashToken, randomToken, sameToken } from "../ids.js";
import { getMerchant, type Merchant } from "../merchants/store.js";
import { deleteSession, findSessionUser, insertSession, type DashboardUser } from "./store.js";

/**
 * Dashboard sessions and CSRF protection. A session is a random token (~256 bits) in an httpOnly,
 * SameSite=Strict cookie limited to /dashboard (Secure when PUBLIC_BASE_URL is https); the database keeps
 * only its sha256, with an expiry read against the injected clock, so a session can be revoked by
 * deleting its row (sign-out does). Every state-changing form carries a CSRF token derived from the
 * session token (HMAC), so it is per session, needs no storage, and is compared in constant time.
 */

export const SESSION_COOKIE = "lumenpay_session";
/** Sessions end this long after sign-in, used or not. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** The form field that carries the CSRF token. */
export const CSRF_FIELD = "_csrf";
const COOKIE_PATH = "/dashboard";

export interface DashboardSession {
  user: DashboardUser;
  merchant: Merchant;
  /** This session's CSRF token, for the forms of the page being rendered. */
  csrfToken: string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The signed-in user, set on every route inside the signed-in context. */
    dashboard: DashboardSession;
  }
  interface FastifyContextConfig {
    /** A POST a viewer may send too (signing out); every other one needs an owner. */
    viewerMayPost?: boolean;
  }
}


const csrfTokenFor = (sessionToken: string) => createHmac("sha256", sessionToken).update("lumenpay dashboard csrf").digest("base64url");

/** A cookie's value from the request; undefined when it is absent. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAgeS: number;
  secure: boolean;
}

/** A Set-Cookie value: never readable by scripts, never sent by another site's requests. */
export function cookie(name: string, value: string, { path, maxAgeS, secure }: CookieOptions): string {
  return [`${name}=${value}`, `Path=${path}`, `Max-Age=${maxAgeS}`, "HttpOnly", "SameSite=Strict", ...(secure ? ["Secure"] : [])].join("; ");
}

/** Cookies are Secure whenever the dashboard is served over https (PUBLIC_BASE_URL). */
export const secureCookies = (publicBaseUrl: string) => publicBaseUrl.startsWith("https:");

/** Starts a session for `user` and returns the cookie that carries it. */
export async function startSession(pool: Pool, user: DashboardUser, { now, secure }: { now: Date; secure: boolean }): Promise<string> {
  const token = randomToken(43);
  await insertSession(pool, { tokenHash: hashToken(token), userId: user.id, now, expiresAt: new Date(now.getTime() + SESSION_TTL_MS) });
  return cookie(SESSION_COOKIE, token, { path: COOKIE_PATH, maxAgeS: SESSION_TTL_MS / 1000, secure });
}

/** Ends the request's session (its row is deleted, so the token is worthless) and returns the cookie that clears it. */
export async function endSession(pool: Pool, request: FastifyRequest, secure: boolean): Promise<string> {
  const token = readCookie(request, SESSION_COOKIE);
  if (token) await deleteSession(pool, hashToken(token));
  return cookie(SESSION_COOKIE, "", { path: COOKIE_PATH, maxAgeS: 0, secure });
}

/** A dashboard path to come back to after signing in; anything else (another site, odd characters) is refused. */
export function safeReturnPath(path: unknown): string | undefined {
  return typeof path === "string" && /^\/dashboard(\/[\w\-/]*)?(\?[\w\-=&%.]*)?$/.test(path) && !path.includes("//") ? path : undefined;
}

function signInFirst(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const back = request.method === "GET" ? safeReturnPath(request.url) : undefined;
  return reply.redirect(back && back !== "/dashboard" ? `/dashboard/login?next=${encodeURIComponent(back)}` : "/dashboard/login", 303);
}

/** The token a form sent; forms are parsed to plain objects (see forms.ts). */
function sentCsrfToken(request: FastifyRequest): string | undefined {
  const body = request.body as Record<string, unknown> | undefined;
  const value = body?.[CSRF_FIELD];
  return typeof value === "string" ? value : undefined;
}

/**
 * Requires a signed-in user on every route of `app`'s context (register it inside an encapsulated plugin):
 * without a valid session a request is sent to the sign-in page. Every request other than GET must carry
 * the session's CSRF token, and must come from an owner unless its route allows viewers (`viewerMayPost`).
 */
export function requireSignIn(app: FastifyInstance, { pool, clock }: { pool: Pool; clock: Clock }): void {
  app.decorateRequest("dashboard", null as unknown as DashboardSession);
  app.addHook("preHandler", async (request, reply) => {
    const token = readCookie(request, SESSION_COOKIE);
    const user = token ? await findSessionUser(pool, hashToken(token), clock.now()) : undefined;
    const merchant = user && (await getMerchant(pool, user.merchantId));
    if (!token || !user || !merchant) return signInFirst(request, reply);
    const csrfToken = csrfTokenFor(token);
    // Set before the checks below, so that a refusal is shown inside the dashboard's pages.
    request.dashboard = { user, merchant, csrfToken };
    if (request.method !== "GET" && request.method !== "HEAD") {
      const sent = sentCsrfToken(request);
      if (sent === undefined || !sameToken(sent, csrfToken)) {
        throw new HttpError(403, "invalid_csrf_token", "This form has expired or was not sent from this dashboard. Go back, reload the page and try again.");
      }
      if (user.role !== "owner" && !request.routeOptions.config.viewerMayPost) {
        throw new HttpError(403, "view_only", "You have view-only access: ask an owner of this merchant to make this change.");
      }
    }
  });
}

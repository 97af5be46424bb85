import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { RateLimiter, tooManyRequests } from "../http/auth.js";
import { HttpError } from "../http/errors.js";
import { randomToken } from "../ids.js";
import type { RouteDeps } from "../routes.js";
import { html } from "../web/html.js";
import { hashToken, sameToken } from "../ids.js";
import { cookie, CSRF_FIELD, endSession, readCookie, safeReturnPath, secureCookies, SESSION_COOKIE, startSession } from "./auth.js";
import { failedForm, field, formError, formOf, text, type FormState } from "./forms.js";
import { sendPublicPage } from "./layout.js";
import { NO_USER_HASH, verifyPassword } from "./passwords.js";
import { findSessionUser, findUserByEmail } from "./store.js";
import { MAX_PASSWORD_LENGTH, normalizeEmail } from "./users.js";

/**
 * Failed sign-ins allowed per email and per client address per minute (in this process's memory), as the
 * API limits invalid keys: guessing passwords stops long before scrypt's cost adds up. Only failures count.
 */
export const LOGIN_FAILURES_PER_EMAIL_PER_MINUTE = 5;
export const LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE = 20;

/**
 * The sign-in form is protected against cross-site posting too (login CSRF: being signed in to someone
 * else's account), with a double-submit token: a random cookie, SameSite=Strict, repeated in the form.
 */
const LOGIN_COOKIE = "lumenpay_login";
const LOGIN_PATH = "/dashboard/login";
const BAD_CREDENTIALS = "The email or the password is not right.";

interface LoginQuery {
  next?: string;
  signed_out?: string;
}

/** `/dashboard/login`: sign-in; rendered without a session. */
export const loginRoutes: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config }) => {
  const secure = secureCookies(config.publicBaseUrl);
  const perEmail = new RateLimiter(LOGIN_FAILURES_PER_EMAIL_PER_MINUTE, clock);
  const perAddress = new RateLimiter(LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE, clock);

  function showForm(reply: FastifyReply, o: { loginToken: string; next?: string; state?: FormState; status?: number; signedOut?: boolean }) {
    const body = html`<section class="card" aria-labelledby="signin"><h2 id="signin">Sign in to your merchant dashboard</h2>
${o.signedOut ? html`<p class="notice" role="status">You are signed out.</p>` : ""}
${formError(o.state)}
<form method="post" action="${LOGIN_PATH}">
<input type="hidden" name="${CSRF_FIELD}" value="${o.loginToken}">${o.next ? html`<input type="hidden" name="next" value="${o.next}">` : ""}
${field({ name: "email", label: "Email", type: "email", autocomplete: "username", required: true, value: "", state: o.state })}
${field({ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true })}
<button type="submit">Sign in</button></form>
<p class="muted">Accounts are created by the operator: <code>lumenpay users create --merchant mer_… --email you@example.com</code>.</p></section>`;
    reply.header("set-cookie", cookie(LOGIN_COOKIE, o.loginToken, { path: LOGIN_PATH, maxAgeS: 3600, secure }));
    return sendPublicPage(reply, { title: "Sign in", body, status: o.status });
  }

  /** The browser's login token, or a new one: two open sign-in tabs share one. */
  const loginTokenOf = (request: FastifyRequest) => {
    const current = readCookie(request, LOGIN_COOKIE);
    return current && /^[0-9A-Za-z]{32}$/.test(current) ? current : randomToken(32);
  };

  const signedIn = async (request: FastifyRequest) => {
    const token = readCookie(request, SESSION_COOKIE);
    return token !== undefined && (await findSessionUser(pool, hashToken(token), clock.now())) !== undefined;
  };

  const querySchema = {
    type: "object",
    properties: { next: { type: "string", maxLength: 500 }, signed_out: { type: "string", maxLength: 1 } },
  } as const;

  app.get<{ Querystring: LoginQuery }>("/login", { schema: { hide: true, querystring: querySchema } }, async (request, reply) => {
    const next = safeReturnPath(request.query.next);
    if (await signedIn(request)) return reply.redirect(next ?? "/dashboard", 303);
    return showForm(reply, { loginToken: loginTokenOf(request), next, signedOut: request.query.signed_out === "1" });
  });

  app.post("/login", { schema: { hide: true } }, async (request, reply) => {
    const form = formOf(request);
    const loginToken = readCookie(request, LOGIN_COOKIE);
    const sent = form[CSRF_FIELD];
    if (!loginToken || typeof sent !== "string" || !sameToken(sent, loginToken)) {
      throw new HttpError(403, "invalid_csrf_token", "This sign-in form has expired or was not sent from this site. Reload the sign-in page and try again.");
    }
    const next = safeReturnPath(form.next);
    const email = normalizeEmail(text(form, "email", 254));
    const password = form.password;
    const fail = (error: HttpError) => showForm(reply, { loginToken, next, state: failedForm("login", form, error), status: error.status });

    const wait = Math.max(perAddress.exhausted(request.ip), perEmail.exhausted(email));
    if (wait > 0) return fail(tooManyRequests(reply, wait, "sign-in attempts"));
    // The same scrypt work and the same answer whether the email has an account or not.
    const user = await findUserByEmail(pool, email);
    const valid =
      typeof password === "string" && [...password].length <= MAX_PASSWORD_LENGTH && (await verifyPassword(password, user?.passwordHash ?? NO_USER_HASH));
    if (!user || !valid) {
      perAddress.take(request.ip);
      perEmail.take(email);
      return fail(new HttpError(401, "invalid_credentials", BAD_CREDENTIALS));
    }
    reply.header("set-cookie", [
      await startSession(pool, user, { now: clock.now(), secure }),
      cookie(LOGIN_COOKIE, "", { path: LOGIN_PATH, maxAgeS: 0, secure }),
    ]);
    return reply.redirect(next ?? "/dashboard", 303);
  });
};

/** `POST /dashboard/logout`, inside the signed-in context: deletes the session, so its cookie is worthless even if kept. */
export const logoutRoute: FastifyPluginAsync<RouteDeps> = async (app, { pool, config }) => {
  app.post("/logout", { schema: { hide: true }, config: { viewerMayPost: true } }, async (request, reply) => {
    reply.header("set-cookie", await endSession(pool, request, secureCookies(config.publicBaseUrl)));
    return reply.redirect("/dashboard/login?signed_out=1", 303);
  });
};

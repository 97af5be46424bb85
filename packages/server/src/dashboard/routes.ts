import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "../http/errors.js";
import type { RouteDeps } from "../routes.js";
import { html } from "../web/html.js";
import { requireSignIn } from "./auth.js";
import { FORM_BODY_LIMIT, parseForm } from "./forms.js";
import { keysPages } from "./keys-pages.js";
import { sendDashboardPage, sendPublicPage } from "./layout.js";
import { loginRoutes, logoutRoute } from "./login-pages.js";
import { overviewPage } from "./overview-page.js";
import { paymentPage } from "./payment-page.js";
import { paymentsPages } from "./payments-pages.js";
import { settingsPages } from "./settings-pages.js";
import { unmatchedPage } from "./unmatched-page.js";
import { endpointPage } from "./endpoint-page.js";
import { webhooksPage } from "./webhooks-pages.js";

/**
 * The merchant dashboard under /dashboard: server-rendered pages and HTML forms (POST, then a redirect
 * to a GET) over the same services and stores as the JSON API. Registered outside the API-key context:
 * it has its own sign-in, sessions and CSRF tokens (auth.ts).
 */

const TITLES: Record<number, string> = {
  400: "That did not work",
  401: "Sign in first",
  403: "Not allowed",
  404: "Not found",
  409: "That did not work",
  413: "Too much",
  415: "Not a form",
  429: "Too many attempts",
};

/** Errors as pages: the API's error handler answers JSON, which a browser would show raw. */
function showError(error: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply) {
  let status = 500;
  let message = "Something went wrong on our side; try again in a moment.";
  if (error instanceof HttpError) [status, message] = [error.status, error.message];
  else if (error.validation && error.validationContext === "params") [status, message] = [404, "There is nothing at this address."];
  else if (error.validation) [status, message] = [400, "This address has parameters this page does not understand."];
  else if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") [status, message] = [415, "The dashboard takes HTML form posts only."];
  else if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") [status, message] = [413, "The form is too large."];
  else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) [status, message] = [error.statusCode, "The request could not be read."];
  // Anything else is ours: logged, and never shown (5xx messages leak no internals).
  else request.log.error({ err: error }, "dashboard error");
  const page = { title: TITLES[status] ?? "Something went wrong", status, body: html`<p role="alert">${message}</p><p><a href="/dashboard">Back to the dashboard</a></p>` };
  const session = (request as Partial<FastifyRequest>).dashboard;
  return session ? sendDashboardPage(request, reply, page) : sendPublicPage(reply, page);
}

/** Registers the dashboard on `app`, an encapsulated context (src/routes.ts gives it the /dashboard prefix). */
export async function registerDashboard(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  // Forms only, in this context: JSON (the API's) is refused with 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    try {
      done(null, parseForm(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.setErrorHandler(showError);
  app.setNotFoundHandler((request, reply) => showError(new HttpError(404, "route_not_found", "There is nothing at this address."), request, reply));

  await app.register(loginRoutes, deps);
  await app.register(async (signedIn) => {
    requireSignIn(signedIn, deps);
    for (const pages of [logoutRoute, overviewPage, paymentsPages, paymentPage, unmatchedPage, webhooksPage, endpointPage, keysPages, settingsPages]) {
      await signedIn.register(pages, deps);
    }
  });
}

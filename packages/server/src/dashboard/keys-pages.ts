import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import { createApiKey, revokeApiKey, rotateApiKey } from "../merchants/service.js";
import { listApiKeys, type ApiKey } from "../merchants/store.js";
import type { RouteDeps } from "../routes.js";
import { html, type Html } from "../web/html.js";
import { badge, copyable, table, when } from "./format.js";
import { actionButton, csrfField, failedForm, field, formError, formOf, stateOf, wholeNumber, type FormState } from "./forms.js";
import { canChange, sendDashboardPage } from "./layout.js";
import { formIdField, once } from "./once.js";

const DAY_MS = 86_400_000;
const MAX_KEY_DAYS = 3650;
const MAX_GRACE_HOURS = 24 * 365;

/** What to say after an action: a new secret (shown this once), or that a resent form changed nothing. */
type Outcome = { secret: { keyId: string; value: string } } | { alreadyCreated: string };

function keyState(key: ApiKey, now: Date): Html {
  if (key.revokedAt) return html`${badge("revoked", "bad")} ${when(key.revokedAt)}`;
  if (key.expiresAt && key.expiresAt <= now) return html`${badge("expired")} ${when(key.expiresAt)}`;
  return html`${badge("active", "ok")}${key.expiresAt ? html` until ${when(key.expiresAt)}` : ""}`;
}

const usable = (key: ApiKey, now: Date) => !key.revokedAt && !(key.expiresAt && key.expiresAt <= now);

function keyActions(request: FastifyRequest, key: ApiKey, state: FormState | undefined, graceHours: number): Html {
  const rotateState = stateOf(state, `rotate-${key.id}`);
  return html`${formError(rotateState ?? stateOf(state, `revoke-${key.id}`))}
<form method="post" action="/dashboard/keys/${key.id}/rotate">${csrfField(request)}
${field({ name: "grace_hours", id: `grace-${key.id}`, label: "Old key works for (hours)", type: "number", min: 0, max: MAX_GRACE_HOURS, value: String(graceHours), state: rotateState })}
<button type="submit" class="secondary">Rotate</button></form>
${actionButton(request, { action: `/dashboard/keys/${key.id}/revoke`, label: "Revoke", danger: true, confirm: `Revoke ${key.prefix}…? Requests using it are refused at once.` })}`;
}

function outcomeBlock(outcome: Outcome | undefined): Html {
  if (!outcome) return html``;
  if ("alreadyCreated" in outcome) {
    return html`<p class="notice" role="status">This form was sent before: key <code>${outcome.alreadyCreated}</code> was created then, and its secret shown once. Revoke it if it was not saved.</p>`;
  }
  return html`<div class="secret" role="status">${copyable("new-key", `New API key ${outcome.secret.keyId}`, outcome.secret.value)}
<p><strong>Shown only this once:</strong> store it now. Lumenpay keeps only its hash and cannot show it again.</p></div>`;
}

/** `/dashboard/keys`: the merchant's API keys; create (secret shown once), rotate with a grace period, revoke. */
export const keysPages: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config }) => {
  const graceHours = config.api.keyRotationGraceHours;

  async function showKeys(request: FastifyRequest, reply: FastifyReply, o: { state?: FormState; outcome?: Outcome; status?: number } = {}) {
    const now = clock.now();
    const keys = (await listApiKeys(pool, request.dashboard.merchant.id)).reverse();
    const owner = canChange(request);
    const rows = keys.map(
      (k) => html`<tr><td><code>${k.prefix}…</code><br><code class="muted">${k.id}</code></td><td>${keyState(k, now)}</td><td>${when(k.createdAt)}</td><td>${when(k.lastUsedAt)}</td>
${owner ? html`<td>${usable(k, now) ? keyActions(request, k, o.state, graceHours) : "—"}</td>` : ""}</tr>`,
    );
    const createState = stateOf(o.state, "create");
    const body = html`${outcomeBlock(o.outcome)}
${table({ id: "t-keys", caption: "API keys, newest first", head: ["Key", "State", "Created", "Last used", ...(owner ? ["Actions"] : [])], rows, empty: "No API keys." })}
${owner ? html`<section class="card" aria-labelledby="new-key-h"><h2 id="new-key-h">Create an API key</h2>${formError(createState)}
<form method="post" action="/dashboard/keys">${csrfField(request)}${formIdField()}
${field({ name: "expires_in_days", label: "Expires after (days, empty for never)", type: "number", min: 1, max: MAX_KEY_DAYS, state: createState })}
<button type="submit">Create API key</button></form></section>` : ""}`;
    return sendDashboardPage(request, reply, { title: "API keys", body, status: o.status ?? o.state?.error.status });
  }

  /** Runs an action; a service's error is shown next to form `form`, with the keys listed again. */
  async function act(request: FastifyRequest, reply: FastifyReply, form: string, run: () => Promise<FastifyReply>) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return showKeys(request, reply, { state: failedForm(form, formOf(request), error) });
    }
  }

  app.get("/keys", { schema: { hide: true } }, async (request, reply) => showKeys(request, reply));

  // The new secret is shown in the answer to the POST, never through a redirect: it must not sit in a URL or a store.
  app.post("/keys", { schema: { hide: true } }, async (request, reply) =>
    act(request, reply, "create", async () => {
      const form = formOf(request);
      const merchantId = request.dashboard.merchant.id;
      const now = clock.now();
      const days = wholeNumber(form, "expires_in_days", { min: 1, max: MAX_KEY_DAYS, fallback: 0 });
      let secret: string | undefined;
      const { body, replayed } = await once(pool, { merchantId, form, action: "/dashboard/keys", now }, async (tx) => {
        const created = await createApiKey(tx, merchantId, days === 0 ? null : new Date(now.getTime() + days * DAY_MS));
        secret = created.secret;
        return { status: 201, body: { id: created.key.id } };
      });
      const outcome: Outcome = replayed || !secret ? { alreadyCreated: body.id } : { secret: { keyId: body.id, value: secret } };
      return showKeys(request, reply, { outcome, status: replayed ? 200 : 201 });
    }),
  );

  app.post<{ Params: { id: string } }>("/keys/:id/rotate", { schema: { hide: true, params: idParams("key") } }, async (request, reply) =>
    act(request, reply, `rotate-${request.params.id}`, async () => {
      const hours = wholeNumber(formOf(request), "grace_hours", { min: 0, max: MAX_GRACE_HOURS, fallback: graceHours });
      const { key, secret } = await rotateApiKey(pool, request.params.id, hours, clock.now(), { merchantId: request.dashboard.merchant.id });
      return showKeys(request, reply, { outcome: { secret: { keyId: key.id, value: secret } }, status: 201 });
    }),
  );

  app.post<{ Params: { id: string } }>("/keys/:id/revoke", { schema: { hide: true, params: idParams("key") } }, async (request, reply) =>
    act(request, reply, `revoke-${request.params.id}`, async () => {
      await revokeApiKey(pool, request.params.id, clock.now(), { merchantId: request.dashboard.merchant.id });
      return reply.redirect("/dashboard/keys?notice=revoked", 303);
    }),
  );
};

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { transaction } from "../db/pool.js";
import { HttpError, notFound } from "../http/errors.js";
import { idParams } from "../http/inputs.js";
import type { RouteDeps } from "../routes.js";
import { html, type Html } from "../web/html.js";
import { deliveryOut, listDeliveries } from "../webhooks/deliveries-store.js";
import { MAX_GRACE_PERIOD_HOURS, type EndpointSecretOut } from "../webhooks/endpoint-schemas.js";
import { endpointOut, getEndpoint, type EndpointOut } from "../webhooks/endpoints-store.js";
import { createSecretBox } from "../webhooks/secrets.js";
import { endpointSecrets, patchEndpoint, recoveryWindow, rotateSecret, sendTestEvent, startRecovery, validateEndpointPatch, type CheckedPatch } from "../webhooks/service.js";
import { badge, copyable, table, when } from "./format.js";
import { actionButton, csrfField, failedForm, field, formError, formOf, stateOf, text, wholeNumber, type FormState } from "./forms.js";
import { canChange, sendDashboardPage } from "./layout.js";
import { endpointHealth } from "./queries.js";
import { endpointControls, endpointFields, endpointState, HEALTH_WINDOW_MS, healthText } from "./webhooks-pages.js";

const RECENT_DELIVERIES = 10;

type Params = { Params: { id: string } };
const schema = { hide: true, params: idParams("we") };

/** A `datetime-local` value, read as UTC (the page says so), in the RFC 3339 form the service parses. */
function utcInput(value: string): string | undefined {
  if (value === "") return undefined;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value) ? `${value}:00Z` : `${value}Z`;
}

function secretsBlock(secrets: EndpointSecretOut): Html {
  return html`<div class="secret" role="status">${copyable("secret", "Signing secret", secrets.secret)}
${secrets.previous_secret ? html`${copyable("previous-secret", "Previous secret, still signing too", secrets.previous_secret)}<p>It stops signing at ${when(secrets.previous_secret_expires_at)}.</p>` : ""}</div>`;
}

function ownerForms(request: FastifyRequest, e: EndpointOut, state: FormState | undefined, graceHours: number): Html {
  const action = (path: string) => `/dashboard/webhooks/${e.id}/${path}`;
  return html`<section class="card" aria-labelledby="edit"><h2 id="edit">Settings</h2>${formError(stateOf(state, "edit"))}
<form method="post" action="/dashboard/webhooks/${e.id}">${csrfField(request)}${endpointControls({ url: e.url, description: e.description ?? "", events: e.enabled_events, state: stateOf(state, "edit") })}
<button type="submit">Save</button></form></section>
<section class="card" aria-labelledby="secret-h"><h2 id="secret-h">Signing secret</h2>
<div class="actions">${actionButton(request, { action: action("secret"), label: "Reveal secret" })}</div>
<form method="post" action="${action("rotate")}">${csrfField(request)}
${field({ name: "grace_hours", label: "Grace period (hours)", type: "number", min: 0, max: MAX_GRACE_PERIOD_HOURS, value: String(graceHours), hint: "How long the previous secret keeps signing too; 0 retires it now.", state: stateOf(state, "rotate") })}
<button type="submit" class="secondary">Rotate secret</button></form></section>
<section class="card" aria-labelledby="ops"><h2 id="ops">Test and switch</h2>${formError(stateOf(state, "test") ?? stateOf(state, "switch"))}
<div class="actions">${e.disabled ? "" : actionButton(request, { action: action("test"), label: "Send test event" })}
${e.disabled ? actionButton(request, { action: action("enable"), label: "Enable" }) : actionButton(request, { action: action("disable"), label: "Disable", danger: true, confirm: "Disable this endpoint? Events are stored but not sent until you enable it." })}</div></section>
<section class="card" aria-labelledby="recover"><h2 id="recover">Recover a period</h2>${formError(stateOf(state, "recover"))}
<p class="muted">Sends again every failed or parked delivery of events created in the period (times in UTC).</p>
<form method="post" action="${action("recover")}">${csrfField(request)}
${field({ name: "since", label: "From (UTC)", type: "datetime-local", required: true, state: stateOf(state, "recover") })}
${field({ name: "until", label: "Until (UTC, empty for now)", type: "datetime-local", state: stateOf(state, "recover") })}
<button type="submit" class="secondary">Recover</button></form></section>`;
}

/** `/dashboard/webhooks/:id`: one endpoint's health, settings, secret, test event, switch and recovery. */
export const endpointPage: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config, wakeup }) => {
  const box = createSecretBox(config.webhooks.encryptionKey);

  async function endpointOf(request: FastifyRequest, id: string) {
    const row = await getEndpoint(pool, request.dashboard.merchant.id, id);
    if (!row) throw notFound("webhook endpoint");
    return row;
  }

  async function showEndpoint(request: FastifyRequest, reply: FastifyReply, id: string, o: { state?: FormState; secrets?: EndpointSecretOut } = {}) {
    const merchantId = request.dashboard.merchant.id;
    const row = await endpointOf(request, id);
    const e = endpointOut(row);
    const [health, deliveries] = await Promise.all([
      endpointHealth(pool, merchantId, new Date(clock.now().getTime() - HEALTH_WINDOW_MS)).then((all) => all.get(id)),
      listDeliveries(pool, { merchantId, endpointId: id, after: undefined, limit: RECENT_DELIVERIES }),
    ]);
    const rows = deliveries.map(deliveryOut).map(
      (d) => html`<tr><td><code>${d.event_type}</code></td><td>${badge(d.status)}</td><td class="num">${d.attempt_count}</td><td>${d.last_status_code ?? d.last_error ?? "—"}</td><td>${when(d.created_at)}</td></tr>`,
    );
    const body = html`<p><a href="/dashboard/webhooks">All endpoints</a></p>
<section class="card" aria-labelledby="health"><h2 id="health"><code>${e.url}</code></h2><dl class="facts">
<dt>State</dt><dd>${endpointState(e)}</dd>
<dt>Failing since</dt><dd>${when(row.failing_since)}</dd>
<dt>Success, last 24 h</dt><dd>${healthText(health)}</dd>
<dt>Queued</dt><dd>${health?.queued ?? 0}${health?.oldestDueAt ? html`, the oldest due ${when(health.oldestDueAt)}` : ""}</dd>
<dt>Events</dt><dd>${e.enabled_events.map((t) => html`<code>${t}</code> `)}</dd>
<dt>Previous secret until</dt><dd>${when(e.previous_secret_expires_at)}</dd>
<dt>Id</dt><dd><code>${e.id}</code></dd></dl>${o.secrets ? secretsBlock(o.secrets) : ""}</section>
${canChange(request) ? ownerForms(request, e, o.state, config.webhooks.secretRotationGraceHours) : ""}
<section class="card" aria-labelledby="recent"><h2 id="recent">Recent deliveries</h2>
${table({ id: "t-deliveries", caption: `The last ${RECENT_DELIVERIES} deliveries`, head: ["Event", "Status", { label: "Attempts", num: true }, "Last answer", "Created"], rows, empty: "Nothing delivered yet." })}</section>`;
    return sendDashboardPage(request, reply, { title: "Webhook endpoint", body, status: o.state?.error.status });
  }

  /** Runs an action on the endpoint and redirects with `notice`; a service's error is shown next to form `form`. */
  async function act(request: FastifyRequest<Params>, reply: FastifyReply, form: string, notice: string, run: (merchantId: string, now: Date) => Promise<unknown>) {
    const { id } = request.params;
    try {
      await run(request.dashboard.merchant.id, clock.now());
      return reply.redirect(`/dashboard/webhooks/${id}?notice=${notice}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError) || error.code === "resource_not_found") throw error;
      return showEndpoint(request, reply, id, { state: failedForm(form, formOf(request), error) });
    }
  }

  /** A patch in its own transaction, run once more if a conflict aborts it (as the API's PATCH). */
  const patch = (request: FastifyRequest<Params>, merchantId: string, checked: CheckedPatch, now: Date) =>
    transaction(pool, (tx) => patchEndpoint(tx, merchantId, request.params.id, checked, now), { retryOnConflict: true, log: request.log });

  app.get<Params>("/webhooks/:id", { schema }, async (request, reply) => showEndpoint(request, reply, request.params.id));

  app.post<Params>("/webhooks/:id", { schema }, async (request, reply) =>
    act(request, reply, "edit", "saved", (merchantId, now) => {
      const { description, ...fields } = endpointFields(formOf(request));
      return patch(request, merchantId, validateEndpointPatch({ ...fields, description: description === "" ? null : description }, config.webhooks), now);
    }),
  );

  // Revealing is a POST, and owners' only: the answer holds a secret, so it is never a URL to share, cache or revisit.
  app.post<Params>("/webhooks/:id/secret", { schema }, async (request, reply) => {
    const row = await endpointOf(request, request.params.id);
    return showEndpoint(request, reply, row.id, { secrets: endpointSecrets(row, box, clock.now()) });
  });

  app.post<Params>("/webhooks/:id/rotate", { schema }, async (request, reply) =>
    act(request, reply, "rotate", "rotated", (merchantId, now) => {
      const graceHours = wholeNumber(formOf(request), "grace_hours", { min: 0, max: MAX_GRACE_PERIOD_HOURS, fallback: config.webhooks.secretRotationGraceHours });
      return transaction(pool, (tx) => rotateSecret(tx, merchantId, request.params.id, { graceHours, box, now }));
    }),
  );

  app.post<Params>("/webhooks/:id/test", { schema }, async (request, reply) =>
    act(request, reply, "test", "test_sent", async (merchantId, now) => {
      await transaction(pool, (tx) => sendTestEvent(tx, merchantId, request.params.id, now));
      wakeup.wake();
    }),
  );

  for (const [path, disabled] of [["disable", true], ["enable", false]] as const) {
    app.post<Params>(`/webhooks/:id/${path}`, { schema }, async (request, reply) =>
      act(request, reply, "switch", path === "disable" ? "disabled" : "enabled", (merchantId, now) => patch(request, merchantId, { disabled }, now)),
    );
  }

  app.post<Params>("/webhooks/:id/recover", { schema }, async (request, reply) =>
    act(request, reply, "recover", "recovery", (merchantId, now) => {
      const form = formOf(request);
      const until = utcInput(text(form, "until", 30));
      const window = recoveryWindow({ since: utcInput(text(form, "since", 30)) ?? "", ...(until ? { until } : {}) }, now);
      return transaction(pool, (tx) => startRecovery(tx, merchantId, request.params.id, window, now));
    }),
  );
};

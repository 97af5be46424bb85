import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { EVENT_TYPES } from "../events/types.js";
import { badRequest, HttpError } from "../http/errors.js";
import type { RouteDeps } from "../routes.js";
import { html, type Html } from "../web/html.js";
import { MAX_ENDPOINTS_PER_MERCHANT } from "../webhooks/endpoint-schemas.js";
import { endpointOut, listEndpointsPage, type EndpointOut } from "../webhooks/endpoints-store.js";
import { createSecretBox } from "../webhooks/secrets.js";
import { createEndpoint, validateEndpointIn } from "../webhooks/service.js";
import { badge, percent, table } from "./format.js";
import { checkboxes, csrfField, failedForm, field, formError, formOf, requiredText, text, texts, type Form, type FormState } from "./forms.js";
import { canChange, sendDashboardPage } from "./layout.js";
import { formIdField, once } from "./once.js";
import { endpointHealth, type DeliveryHealth } from "./queries.js";

export const HEALTH_WINDOW_MS = 24 * 3_600_000;
/** What the event checkboxes offer: every type, or "*" for all of them, including types added later. */
export const EVENT_CHOICES = ["*", ...EVENT_TYPES] as const;

/** The endpoint fields of a form; `description` is "" when none was typed. */
export function endpointFields(form: Form) {
  const events = texts(form, "enabled_events", { maxItems: EVENT_CHOICES.length, max: 100 });
  // The API's schema asks for one at least (minItems); a form with no box ticked sends none.
  if (events.length === 0) throw badRequest("invalid_event_type", "Choose at least one event type, or *.", "enabled_events");
  return { url: requiredText(form, "url", 2048, "URL"), description: text(form, "description", 1000), enabled_events: events };
}

/** An endpoint's state in words: enabled, or disabled and why. */
export function endpointState(e: EndpointOut): Html {
  return e.disabled ? html`${badge("disabled", "bad")} <span class="muted">${e.disabled_reason ?? ""}</span>` : badge("enabled", "ok");
}

export function healthText(h: DeliveryHealth | undefined): Html {
  if (!h) return html`—`;
  return html`${percent(h.succeeded, h.attempts)} <span class="muted">of ${h.attempts} attempts</span>`;
}

/** The fields shared by the create and edit forms. */
export function endpointControls(o: { url: string; description: string; events: string[]; state?: FormState }): Html {
  return html`${field({ name: "url", label: "URL", type: "url", value: o.url, required: true, hint: "https, reachable from the internet; no credentials in it.", state: o.state })}
${field({ name: "description", label: "Description (optional)", value: o.description, state: o.state })}
${checkboxes({ name: "enabled_events", legend: "Events to send", options: EVENT_CHOICES, checked: o.events, state: o.state, hint: "* sends every event type, including types added later; give it alone." })}`;
}

/** `/dashboard/webhooks`: the merchant's endpoints with their health, and the form that adds one. */
export const webhooksPage: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config }) => {
  const box = createSecretBox(config.webhooks.encryptionKey);

  async function showList(request: FastifyRequest, reply: FastifyReply, state?: FormState) {
    const merchantId = request.dashboard.merchant.id;
    const [endpoints, health] = await Promise.all([
      listEndpointsPage(pool, { merchantId, after: undefined, limit: MAX_ENDPOINTS_PER_MERCHANT }),
      endpointHealth(pool, merchantId, new Date(clock.now().getTime() - HEALTH_WINDOW_MS)),
    ]);
    const rows = endpoints.map(endpointOut).map(
      (e) => html`<tr><td><a href="/dashboard/webhooks/${e.id}"><code>${e.url}</code></a>${e.description ? html`<br><span class="muted">${e.description}</span>` : ""}</td>
<td>${e.enabled_events.map((t) => html`<code>${t}</code> `)}</td><td>${endpointState(e)}</td><td>${healthText(health.get(e.id))}</td><td class="num">${health.get(e.id)?.queued ?? 0}</td></tr>`,
    );
    const form = canChange(request)
      ? html`<section class="card" aria-labelledby="add"><h2 id="add">Add an endpoint</h2>${formError(state)}
<form method="post" action="/dashboard/webhooks">${csrfField(request)}${formIdField()}${endpointControls({ url: "", description: "", events: ["*"], state })}
<button type="submit">Add endpoint</button></form></section>`
      : "";
    const body = html`${table({ id: "t-endpoints", caption: "Webhook endpoints (success over the last 24 h)", head: ["Endpoint", "Events", "State", "Success", { label: "Queued", num: true }], rows, empty: "No webhook endpoint yet." })}
${form}`;
    return sendDashboardPage(request, reply, { title: "Webhooks", body, status: state?.error.status });
  }

  app.get("/webhooks", { schema: { hide: true } }, async (request, reply) => showList(request, reply));

  app.post("/webhooks", { schema: { hide: true } }, async (request, reply) => {
    const form = formOf(request);
    const merchantId = request.dashboard.merchant.id;
    try {
      const { description, ...fields } = endpointFields(form);
      const endpoint = validateEndpointIn({ ...fields, ...(description === "" ? {} : { description }) }, config.webhooks);
      const now = clock.now();
      // The stored result is the id alone: the secret is revealed on the endpoint's page, never kept in clear.
      const { body } = await once(pool, { merchantId, form, action: "/dashboard/webhooks", now }, async (tx) => {
        const created = await createEndpoint(tx, merchantId, endpoint, { box, now });
        return { status: 201, body: { id: created.id } };
      });
      return reply.redirect(`/dashboard/webhooks/${body.id}?notice=created`, 303);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return showList(request, reply, failedForm("add", form, error));
    }
  });
};

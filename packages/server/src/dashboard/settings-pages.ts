import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { publicKeyFromSeed } from "@lumenpay/webhooks";
import { stringify } from "smol-toml";
import { enforceLimit, RateLimiter } from "../http/auth.js";
import { badRequest, HttpError } from "../http/errors.js";
import { attachProvenAccount, createAccountChallenge, type AccountChallengeOut } from "../merchants/account-proof.js";
import { createTxtLookup } from "../merchants/dns.js";
import { verifyHomeDomain } from "../merchants/home-domain.js";
import { HOME_DOMAIN_VERIFY_LIMIT_PER_MINUTE } from "../merchants/routes.js";
import { MAX_ACCEPTED_ASSETS, MAX_ACCOUNTS, merchantOut, patchMerchant, type MerchantPatch } from "../merchants/service.js";
import { ORG_FIELDS, type Org } from "../merchants/store.js";
import type { RouteDeps } from "../routes.js";
import { stellarToml } from "../sep1/routes.js";
import { assetLabel, type AssetIn } from "../stellar/assets.js";
import { html, type Html } from "../web/html.js";
import { actionButton, csrfField, failedForm, field, formError, formOf, lines, stateOf, text, textarea, type Form, type FormState } from "./forms.js";
import { copyable, when } from "./format.js";
import { canChange, sendDashboardPage } from "./layout.js";

/** Labels of the SEP-1 [DOCUMENTATION] fields, with the names they are published under. */
const ORG_LABELS: Record<(typeof ORG_FIELDS)[number], string> = {
  name: "Organisation name (ORG_NAME)",
  dba: "Trading as (ORG_DBA)",
  url: "Website (ORG_URL)",
  logo: "Logo URL (ORG_LOGO)",
  description: "Description (ORG_DESCRIPTION)",
  physical_address: "Address (ORG_PHYSICAL_ADDRESS)",
  phone_number: "Phone (ORG_PHONE_NUMBER)",
  official_email: "Official email (ORG_OFFICIAL_EMAIL)",
  support_email: "Support email (ORG_SUPPORT_EMAIL)",
  twitter: "Twitter (ORG_TWITTER)",
  github: "GitHub (ORG_GITHUB)",
  keybase: "Keybase (ORG_KEYBASE)",
};

const MAX_TEXT = 1000;

/** `XLM` or `CODE:ISSUER`, one a line; the service checks codes and issuers and names the line of a bad one. */
function assetLines(value: string): AssetIn[] {
  const assets = lines(value);
  if (assets.length > MAX_ACCEPTED_ASSETS) throw badRequest("invalid_accepted_assets", `At most ${MAX_ACCEPTED_ASSETS} accepted assets.`, "accepted_assets");
  return assets.map((line, i) => {
    if (line.toUpperCase() === "XLM") return "XLM";
    const [code, issuer, ...rest] = line.split(":");
    if (!code || !issuer || rest.length > 0) throw badRequest("invalid_asset", `Line ${i + 1}, "${line}", is not XLM or CODE:ISSUER.`, `accepted_assets.${i}`);
    return { code, issuer };
  });
}

/** What each settings form changes: only its own fields (PATCH semantics; `org` is replaced whole, empty fields removed). */
const PATCHES: Record<string, (form: Form) => MerchantPatch> = {
  profile: (form) => ({
    name: text(form, "name", 200),
    email: text(form, "email", 254),
    org: Object.fromEntries(ORG_FIELDS.map((f) => [f, text(form, `org.${f}`, MAX_TEXT)]).filter(([, v]) => v !== "")) as Org,
  }),
  home_domain: (form) => ({ home_domain: text(form, "home_domain", 259) || null }),
  assets: (form) => ({ accepted_assets: assetLines(text(form, "accepted_assets", 60 * (MAX_ACCEPTED_ASSETS + 1))) }),
  accounts: (form) => {
    const accounts = lines(text(form, "accounts", 57 * (MAX_ACCOUNTS + 1)));
    if (accounts.length > MAX_ACCOUNTS) throw badRequest("invalid_accounts", `At most ${MAX_ACCOUNTS} accounts.`, "accounts");
    return { accounts };
  },
};

interface ShowOptions {
  state?: FormState;
  challenge?: AccountChallengeOut;
}

/** `/dashboard/settings`: the merchant's profile, SEP-1 organisation, home domain (and its proof), assets and accounts. */
export const settingsPages: FastifyPluginAsync<RouteDeps> = async (app, { pool, clock, config }) => {
  const platform = { stellar: config.stellar, signingKey: config.webhookSigningSeed ? publicKeyFromSeed(config.webhookSigningSeed) : undefined };
  const lookupTxt = createTxtLookup(config.dnsServers);
  // Each verification asks DNS; limited per merchant as the API's route is (in this process's memory, apart from it).
  const verifyLimiter = new RateLimiter(HOME_DOMAIN_VERIFY_LIMIT_PER_MINUTE, clock);

  function homeDomainSection(request: FastifyRequest, state: FormState | undefined): Html {
    const m = merchantOut(request.dashboard.merchant);
    const proof = m.home_domain_verification;
    const owner = canChange(request);
    const status = proof
      ? html`<p>${proof.status === "verified" ? html`Verified ${when(proof.verified_at)}: its stellar.toml is served.` : html`<strong>Pending:</strong> create this DNS record, then verify.`}</p>
<dl class="facts"><dt>Type</dt><dd>${proof.record.type}</dd><dt>Name</dt><dd><code>${proof.record.name}</code> (or <code>_lumenpay.${proof.record.name}</code>)</dd><dt>Value</dt><dd><code>${proof.record.value}</code></dd></dl>`
      : html`<p class="muted">No home domain: wallets find your stellar.toml through <code>?merchant_id=${m.id}</code> only.</p>`;
    const verify = owner && proof?.status === "pending" ? html`${formError(stateOf(state, "verify"))}<div class="actions">${actionButton(request, { action: "/dashboard/settings/home_domain/verify", label: "Verify now" })}</div>` : "";
    const edit = owner
      ? html`${formError(stateOf(state, "home_domain"))}<form method="post" action="/dashboard/settings/home_domain">${csrfField(request)}
${field({ name: "home_domain", label: "Home domain", value: m.home_domain ?? "", hint: "e.g. pay.example.com; empty to remove it. A new domain starts pending.", state: stateOf(state, "home_domain") })}
<button type="submit">Save home domain</button></form>`
      : "";
    return html`<section class="card" aria-labelledby="s-domain"><h2 id="s-domain">Home domain</h2>${status}${verify}${edit}</section>`;
  }

  function profileSection(request: FastifyRequest, state: FormState | undefined): Html {
    const m = request.dashboard.merchant;
    if (!canChange(request)) {
      const org = ORG_FIELDS.filter((f) => m.org[f] !== undefined).map((f) => html`<dt>${ORG_LABELS[f]}</dt><dd>${m.org[f]}</dd>`);
      return html`<section class="card" aria-labelledby="s-profile"><h2 id="s-profile">Profile</h2><dl class="facts"><dt>Name</dt><dd>${m.name}</dd><dt>Email</dt><dd>${m.email}</dd>${org}</dl></section>`;
    }
    return html`<section class="card" aria-labelledby="s-profile"><h2 id="s-profile">Profile and organisation</h2>${formError(state)}
<form method="post" action="/dashboard/settings/profile">${csrfField(request)}
${field({ name: "name", label: "Name", value: m.name, required: true, state })}
${field({ name: "email", label: "Contact email", type: "email", value: m.email, required: true, state })}
<h3>Published in your stellar.toml</h3>
<div class="grid">${ORG_FIELDS.map((f) => field({ name: `org.${f}`, label: ORG_LABELS[f], value: m.org[f] ?? "", state }))}</div>
<button type="submit">Save profile</button></form></section>`;
  }

  function listSection(request: FastifyRequest, o: { key: "assets" | "accounts"; title: string; label: string; hint: string; values: string[]; state?: FormState }): Html {
    const name = o.key === "assets" ? "accepted_assets" : "accounts";
    const body = canChange(request)
      ? html`${formError(o.state)}<form method="post" action="/dashboard/settings/${o.key}">${csrfField(request)}
${textarea({ name, label: o.label, value: o.values.join("\n"), rows: Math.max(3, o.values.length + 1), hint: o.hint, state: o.state })}<button type="submit">Save ${o.title.toLowerCase()}</button></form>`
      : html`<ul>${o.values.map((v) => html`<li><code>${v}</code></li>`)}</ul>`;
    return html`<section class="card" aria-labelledby="s-${o.key}"><h2 id="s-${o.key}">${o.title}</h2>${body}</section>`;
  }

  function proofSection(request: FastifyRequest, state: FormState | undefined, challenge: AccountChallengeOut | undefined): Html {
    if (!canChange(request)) return html``;
    const signed = challenge
      ? html`${copyable("challenge", `Challenge for ${challenge.account} (sign it with that account's key; never submit it)`, challenge.transaction)}
<p class="muted">Valid until ${when(challenge.expires_at)}, on the network "${challenge.network_passphrase}".</p>`
      : "";
    return html`<section class="card" aria-labelledby="s-proof"><h2 id="s-proof">Attach an account with proof of control</h2>
${config.merchants.requireAccountProof ? html`<p>This server requires proof for every new account.</p>` : html`<p class="muted">Optional here: it marks the account verified.</p>`}
${formError(stateOf(state, "challenge"))}<form method="post" action="/dashboard/settings/accounts/challenge">${csrfField(request)}
${field({ name: "account", label: "Account (G…)", value: challenge?.account ?? "", state: stateOf(state, "challenge") })}<button type="submit" class="secondary">Get a challenge</button></form>
${signed}${formError(stateOf(state, "prove"))}<form method="post" action="/dashboard/settings/accounts/prove">${csrfField(request)}
${textarea({ name: "transaction", label: "Signed challenge (base64 XDR)", rows: 4, state: stateOf(state, "prove") })}<button type="submit">Attach account</button></form></section>`;
  }

  async function showSettings(request: FastifyRequest, reply: FastifyReply, o: ShowOptions = {}) {
    const m = request.dashboard.merchant;
    const toml = stringify(stellarToml(m, platform));
    const body = html`${profileSection(request, stateOf(o.state, "profile"))}
${homeDomainSection(request, o.state)}
<section class="card" aria-labelledby="s-toml"><h2 id="s-toml">stellar.toml preview</h2><p class="muted">What <a href="/.well-known/stellar.toml?merchant_id=${m.id}">/.well-known/stellar.toml</a> serves for you.</p><pre>${toml}</pre></section>
${listSection(request, { key: "assets", title: "Accepted assets", label: "Assets, one a line", hint: "XLM, or CODE:ISSUER for an issued asset.", values: m.acceptedAssets.map(assetLabel), state: stateOf(o.state, "assets") })}
${listSection(request, { key: "accounts", title: "Receiving accounts", label: "Accounts (G…), one a line", hint: "An account belongs to one merchant; one with open payments cannot be removed.", values: m.accounts, state: stateOf(o.state, "accounts") })}
${proofSection(request, o.state, o.challenge)}`;
    return sendDashboardPage(request, reply, { title: "Settings", body, status: o.state?.error.status });
  }

  /** Runs a change; a service's error (400, 403, 409, 422, 502…) is shown next to form `form`, with what was typed. */
  async function act(request: FastifyRequest, reply: FastifyReply, form: string, run: () => Promise<string | AccountChallengeOut>) {
    try {
      const done = await run();
      return typeof done === "string" ? reply.redirect(`/dashboard/settings?notice=${done}`, 303) : showSettings(request, reply, { challenge: done });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return showSettings(request, reply, { state: failedForm(form, formOf(request), error) });
    }
  }

  app.get("/settings", { schema: { hide: true } }, async (request, reply) => showSettings(request, reply));

  for (const [key, toPatch] of Object.entries(PATCHES)) {
    app.post(`/settings/${key}`, { schema: { hide: true } }, async (request, reply) =>
      act(request, reply, key, async () => {
        const rules = { requireAccountProof: config.merchants.requireAccountProof, homeDomainRules: config, now: clock.now() };
        await patchMerchant(pool, request.dashboard.merchant, toPatch(formOf(request)), rules);
        return "saved";
      }),
    );
  }

  app.post("/settings/home_domain/verify", { schema: { hide: true } }, async (request, reply) =>
    act(request, reply, "verify", async () => {
      enforceLimit(verifyLimiter, request.dashboard.merchant.id, reply, "verifications");
      await verifyHomeDomain(pool, request.dashboard.merchant, { rules: config, lookupTxt, clock, log: request.log });
      return "verified";
    }),
  );

  app.post("/settings/accounts/challenge", { schema: { hide: true } }, async (request, reply) =>
    act(request, reply, "challenge", () => createAccountChallenge(pool, request.dashboard.merchant, text(formOf(request), "account", 56), { config, now: clock.now() })),
  );

  app.post("/settings/accounts/prove", { schema: { hide: true } }, async (request, reply) =>
    act(request, reply, "prove", async () => {
      await attachProvenAccount(pool, request.dashboard.merchant, text(formOf(request), "transaction", 10_000), { config, now: clock.now() });
      return "attached";
    }),
  );
};

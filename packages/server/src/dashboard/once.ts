import type { Db, Pool } from "../db/pool.js";
import { HttpError } from "../http/errors.js";
import { idempotently, requestHash, type HandlerResult } from "../http/idempotency.js";
import { randomToken } from "../ids.js";
import { html, type Html } from "../web/html.js";
import { CSRF_FIELD } from "./auth.js";
import type { Form } from "./forms.js";

/**
 * Forms that create something (a payment, an API key, an endpoint) carry a random id, used as the API's
 * Idempotency-Key: a double click or a reload that sends the form again acts once, and the second send
 * gets the first result (`replayed`). Results are stored like the API's, so never put a secret in one.
 */

const FORM_ID = "form_id";

export const formIdField = (): Html => html`<input type="hidden" name="${FORM_ID}" value="${randomToken(22)}">`;

export async function once<T>(
  pool: Pool,
  { merchantId, form, action, now }: { merchantId: string; form: Form; action: string; now: Date },
  run: (tx: Db) => Promise<HandlerResult<T>>,
): Promise<{ body: T; replayed: boolean }> {
  const id = form[FORM_ID];
  if (typeof id !== "string" || !/^[0-9A-Za-z]{22}$/.test(id)) {
    throw new HttpError(400, "invalid_form", "This form is incomplete; reload the page and fill it in again.");
  }
  const fields = Object.fromEntries(Object.entries(form).filter(([name]) => name !== CSRF_FIELD && name !== FORM_ID));
  try {
    const result = await idempotently(pool, { merchantId, key: `dashboard:${id}`, requestHash: requestHash("POST", action, fields), now }, run);
    if (!result.replayed) result.afterCommit?.();
    return { body: result.body, replayed: result.replayed };
  } catch (error) {
    // The API's messages name the Idempotency-Key header, which a form user never saw.
    if (error instanceof HttpError && error.code === "idempotency_key_reused") {
      throw new HttpError(409, "form_already_sent", "This form was already sent with other values; reload the page for a fresh one.");
    }
    if (error instanceof HttpError && error.code === "idempotency_key_in_use") {
      throw new HttpError(409, "form_being_sent", "This form is being sent already; wait a moment, then reload the page.");
    }
    throw error;
  }
}

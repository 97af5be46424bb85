import type { FastifyRequest } from "fastify";
import { badRequest, HttpError } from "../http/errors.js";
import { html, type Html } from "../web/html.js";
import { CSRF_FIELD } from "./auth.js";

/**
 * HTML forms: parsing `application/x-www-form-urlencoded` bodies, reading bounded fields out of them, and
 * rendering labelled controls that show a service's error (an HttpError naming a `param`) next to the
 * field it is about, with what the user typed kept.
 */

/** A parsed form: one string per field, or several for a repeated one (checkboxes). No prototype, so no key is special. */
export type Form = Record<string, string | string[]>;

export const FORM_BODY_LIMIT = 64 * 1024;
const MAX_FIELDS = 200;

export function parseForm(body: string): Form {
  const form: Form = Object.create(null) as Form;
  let count = 0;
  for (const [name, value] of new URLSearchParams(body)) {
    if (++count > MAX_FIELDS) throw badRequest("invalid_request", `A form has at most ${MAX_FIELDS} fields.`);
    const seen = form[name];
    form[name] = seen === undefined ? value : [...[seen].flat(), value];
  }
  return form;
}

/** The request's form; an empty one for a POST without a body. */
export const formOf = (request: FastifyRequest): Form => (request.body ?? Object.create(null)) as Form;

/** One text field, trimmed; "" when absent. 400 naming the field when it is repeated or longer than `max`. */
export function text(form: Form, name: string, max: number): string {
  const value = form[name] ?? "";
  if (typeof value !== "string") throw badRequest("invalid_request", `${name} was sent more than once.`, name);
  const trimmed = value.trim();
  if ([...trimmed].length > max) throw badRequest("invalid_request", `At most ${max} characters.`, name);
  return trimmed;
}

/** A text field that must not be empty. */
export function requiredText(form: Form, name: string, max: number, label: string): string {
  const value = text(form, name, max);
  if (value === "") throw badRequest("invalid_request", `${label} is required.`, name);
  return value;
}

/** Every value of a repeated field (checkboxes), each bounded. */
export function texts(form: Form, name: string, { maxItems, max }: { maxItems: number; max: number }): string[] {
  const values = [form[name] ?? []].flat();
  if (values.length > maxItems) throw badRequest("invalid_request", `At most ${maxItems} values.`, name);
  values.forEach((v) => {
    if (v.length > max) throw badRequest("invalid_request", `At most ${max} characters each.`, name);
  });
  return values;
}

/** The non-empty lines of a textarea, each trimmed. */
export const lines = (value: string) => value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/** A whole number of `unit`s in [min, max], typed in a number field. */
export function wholeNumber(form: Form, name: string, { min, max, fallback }: { min: number; max: number; fallback: number }): number {
  const value = text(form, name, 10);
  if (value === "") return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw badRequest("invalid_request", `Enter a whole number from ${min} to ${max}.`, name);
  }
  return Number(value);
}

/** What a form showed when it was sent back with an error: the user's input (secrets left out) and the error. */
export interface FormState {
  /** Which form on the page failed, when a page has several. */
  form: string;
  values: Form;
  error: HttpError;
}

const NEVER_SHOWN_AGAIN = new Set([CSRF_FIELD, "password"]);

export function failedForm(form: string, values: Form, error: HttpError): FormState {
  const kept = Object.fromEntries(Object.entries(values).filter(([name]) => !NEVER_SHOWN_AGAIN.has(name)));
  return { form, values: kept, error };
}

/** The state of form `name` if it is the one that failed. */
export const stateOf = (state: FormState | undefined, name: string) => (state?.form === name ? state : undefined);

/** What to show in field `name`: the user's input after an error, else `current`. */
export function shown(state: FormState | undefined, name: string, current: string): string {
  const value = state?.values[name];
  return value === undefined ? current : [value].flat().join("\n");
}

/** The error's message when it is about field `name` (its `param` is the name or inside it: `accounts.2`, `asset.code`). */
function errorFor(state: FormState | undefined, name: string): string | undefined {
  const param = state?.error.param;
  return param !== undefined && (param === name || param.startsWith(`${name}.`)) ? state!.error.message : undefined;
}

/** The form's error at its top, announced to screen readers; repeated next to the field it names. */
export function formError(state: FormState | undefined): Html {
  return state ? html`<div class="form-error" role="alert"><p><strong>Not saved:</strong> ${state.error.message}</p></div>` : html``;
}

export const csrfField = (request: FastifyRequest) => html`<input type="hidden" name="${CSRF_FIELD}" value="${request.dashboard.csrfToken}">`;

export interface FieldOptions {
  name: string;
  label: string;
  value?: string;
  /** Unique on the page when several forms have a field of this name. */
  id?: string;
  type?: "text" | "email" | "url" | "number" | "password" | "datetime-local" | "search";
  hint?: string;
  required?: boolean;
  state?: FormState;
  /** For number fields. */
  min?: number;
  max?: number;
  autocomplete?: string;
  inputmode?: "decimal" | "numeric";
}

function described(id: string, hint: string | undefined, error: string | undefined) {
  const ids = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ");
  return {
    attrs: html`${ids ? html` aria-describedby="${ids}"` : ""}${error ? html` aria-invalid="true"` : ""}`,
    notes: html`${hint ? html`<span class="hint" id="${id}-hint">${hint}</span>` : ""}${error ? html`<span class="field-error" id="${id}-error">${error}</span>` : ""}`,
  };
}

const fieldId = (o: { id?: string; name: string }) => `f-${(o.id ?? o.name).replace(/[^\w-]/g, "-")}`;

export function field(o: FieldOptions): Html {
  const id = fieldId(o);
  const { attrs, notes } = described(id, o.hint, errorFor(o.state, o.name));
  const value = shown(o.state, o.name, o.value ?? "");
  return html`<div class="field"><label for="${id}">${o.label}</label>${notes}<input id="${id}" name="${o.name}" type="${o.type ?? "text"}" value="${value}"${o.required ? html` required` : ""}${o.min !== undefined ? html` min="${o.min}"` : ""}${o.max !== undefined ? html` max="${o.max}"` : ""}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ""}${o.inputmode ? html` inputmode="${o.inputmode}"` : ""}${attrs}></div>`;
}

export function textarea(o: Omit<FieldOptions, "type" | "min" | "max"> & { rows?: number }): Html {
  const id = fieldId(o);
  const { attrs, notes } = described(id, o.hint, errorFor(o.state, o.name));
  return html`<div class="field"><label for="${id}">${o.label}</label>${notes}<textarea id="${id}" name="${o.name}" rows="${o.rows ?? 3}"${attrs}>${shown(o.state, o.name, o.value ?? "")}</textarea></div>`;
}

export function select(o: Omit<FieldOptions, "type" | "min" | "max"> & { options: Array<{ value: string; label: string }> }): Html {
  const id = fieldId(o);
  const { attrs, notes } = described(id, o.hint, errorFor(o.state, o.name));
  const chosen = shown(o.state, o.name, o.value ?? "");
  return html`<div class="field"><label for="${id}">${o.label}</label>${notes}<select id="${id}" name="${o.name}"${attrs}>${o.options.map(
    (option) => html`<option value="${option.value}"${option.value === chosen ? html` selected` : ""}>${option.label}</option>`,
  )}</select></div>`;
}

/** A group of checkboxes with a legend; `checked` are the values ticked unless the user's input says otherwise. */
export function checkboxes(o: { name: string; legend: string; options: readonly string[]; checked: string[]; state?: FormState; hint?: string }): Html {
  const id = fieldId(o);
  const ticked = o.state ? [o.state.values[o.name] ?? []].flat() : o.checked;
  const { notes } = described(id, o.hint, errorFor(o.state, o.name));
  return html`<fieldset class="checks"><legend>${o.legend}</legend>${notes}${o.options.map(
    (value, i) =>
      html`<label class="check"><input type="checkbox" name="${o.name}" value="${value}" id="${id}-${i}"${ticked.includes(value) ? html` checked` : ""}> <code>${value}</code></label>`,
  )}</fieldset>`;
}

/** A one-button form that POSTs `fields` with the CSRF token to `action`. */
export function actionButton(
  request: FastifyRequest,
  o: { action: string; label: string; fields?: Record<string, string>; danger?: boolean; confirm?: string },
): Html {
  const hidden = Object.entries(o.fields ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
  return html`<form class="inline" method="post" action="${o.action}"${o.confirm ? html` data-confirm="${o.confirm}"` : ""}>${csrfField(request)}${hidden}<button type="submit"${o.danger ? html` class="danger"` : ""}>${o.label}</button></form>`;
}

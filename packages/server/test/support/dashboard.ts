import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import type { Pool } from "../../src/db/pool.js";
import { createUser } from "../../src/dashboard/users.js";
import { randomToken } from "../../src/ids.js";

/** A password that passes the dashboard's rules. */
export const PASSWORD = "correct horse battery staple";

/** A dashboard user of `merchantId` with PASSWORD; the email is unique per call unless given. */
export async function dashboardUser(pool: Pool, merchantId: string, role: "owner" | "viewer", email = `${role}-${randomToken(8).toLowerCase()}@shop.test`) {
  return createUser(pool, { merchantId, email, role, password: PASSWORD }, new Date());
}

/** The value of the first hidden `name` field in a page. */
export function hiddenField(body: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(body)?.[1];
}

/** `name=value` of a Set-Cookie header for `cookie`, or undefined. */
export function setCookie(res: LightMyRequestResponse, cookie: string): string | undefined {
  const header = [res.headers["set-cookie"] ?? []].flat().find((c) => c.startsWith(`${cookie}=`));
  return header;
}

const cookiePair = (setCookieHeader: string) => setCookieHeader.split(";")[0]!;

export type Fields = Record<string, string | string[]>;

/** A form body, as a browser encodes it. */
export function formBody(fields: Fields): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) params.append(name, v);
  return params.toString();
}

/** Signs in through the real form (its login cookie and token included); returns the response to the POST. */
export async function postLogin(app: FastifyInstance, email: string, password: string, extra: Fields = {}) {
  const page = await app.inject({ method: "GET", url: "/dashboard/login" });
  const loginCookie = cookiePair(setCookie(page, "lumenpay_login")!);
  return app.inject({
    method: "POST",
    url: "/dashboard/login",
    headers: { cookie: loginCookie, "content-type": "application/x-www-form-urlencoded" },
    payload: formBody({ _csrf: hiddenField(page.body, "_csrf")!, email, password, ...extra }),
  });
}

/** A signed-in browser, as far as inject goes: its session cookie, and the CSRF token its pages carry. */
export class DashboardSession {
  private constructor(
    private readonly app: FastifyInstance,
    readonly cookie: string,
    readonly csrf: string,
  ) {}

  static async signIn(app: FastifyInstance, email: string, password = PASSWORD): Promise<DashboardSession> {
    const res = await postLogin(app, email, password);
    expect(res.statusCode, res.body).toBe(303);
    const cookie = cookiePair(setCookie(res, "lumenpay_session")!);
    const overview = await app.inject({ method: "GET", url: "/dashboard", headers: { cookie } });
    expect(overview.statusCode).toBe(200);
    return new DashboardSession(app, cookie, hiddenField(overview.body, "_csrf")!);
  }

  get(url: string) {
    return this.app.inject({ method: "GET", url, headers: { cookie: this.cookie } });
  }

  /** POSTs a form with this session's CSRF token unless `fields` sets `_csrf` itself. */
  post(url: string, fields: Fields = {}) {
    return this.app.inject({
      method: "POST",
      url,
      headers: { cookie: this.cookie, "content-type": "application/x-www-form-urlencoded" },
      payload: formBody({ _csrf: this.csrf, ...fields }),
    });
  }

  /** GETs a page with a form and POSTs it with that form's own hidden fields (its form id) plus `fields`. */
  async submit(pageUrl: string, action: string, fields: Fields = {}) {
    const page = await this.get(pageUrl);
    const formId = hiddenField(page.body.slice(page.body.indexOf(`action="${action}"`)), "form_id");
    return this.post(action, { ...(formId ? { form_id: formId } : {}), ...fields });
  }
}

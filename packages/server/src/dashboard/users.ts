import type { Pool } from "../db/pool.js";
import { badRequest, HttpError } from "../http/errors.js";
import { newId } from "../ids.js";
import { isEmail } from "../merchants/service.js";
import { getMerchant } from "../merchants/store.js";
import { hashPassword } from "./passwords.js";
import { insertUser, ROLES, type DashboardUser, type Role } from "./store.js";

/** NIST SP 800-63B asks for at least 8 characters; a dashboard that moves money asks for more. Bounded, as scrypt reads it all. */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

export interface UserIn {
  merchantId: string;
  email: string;
  role: string;
  password: string;
}

/** Emails are compared as typed in any case: stored lower-cased and trimmed. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** Creates a dashboard user of a merchant (the operator's CLI does); 409 `email_in_use` when the email has an account. */
export async function createUser(pool: Pool, input: UserIn, now: Date): Promise<DashboardUser> {
  const email = normalizeEmail(input.email);
  if (!isEmail(email)) throw badRequest("invalid_email", "Email address is not valid.", "email");
  if (!(ROLES as readonly string[]).includes(input.role)) throw badRequest("invalid_role", `role must be one of ${ROLES.join(", ")}.`, "role");
  const length = [...input.password].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw badRequest("invalid_password", `The password must be ${MIN_PASSWORD_LENGTH}–${MAX_PASSWORD_LENGTH} characters long.`, "password");
  }
  if (!(await getMerchant(pool, input.merchantId))) throw new HttpError(404, "resource_not_found", `No merchant ${input.merchantId}.`, "merchant");
  const user = await insertUser(pool, {
    id: newId("usr"),
    merchantId: input.merchantId,
    email,
    role: input.role as Role,
    passwordHash: await hashPassword(input.password),
    now,
  });
  if (!user) throw new HttpError(409, "email_in_use", `${email} already has a dashboard account.`, "email");
  return user;
}

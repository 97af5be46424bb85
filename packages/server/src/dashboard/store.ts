import type { Db } from "../db/pool.js";

export const ROLES = ["owner", "viewer"] as const;
/** An owner may do everything the dashboard offers; a viewer sees everything and changes nothing. */
export type Role = (typeof ROLES)[number];

export interface DashboardUser {
  id: string;
  merchantId: string;
  email: string;
  role: Role;
  passwordHash: string;
  createdAt: Date;
}

interface UserRow {
  id: string;
  merchant_id: string;
  email: string;
  role: Role;
  password_hash: string;
  created_at: Date;
}

const toUser = (r: UserRow): DashboardUser => ({
  id: r.id,
  merchantId: r.merchant_id,
  email: r.email,
  role: r.role,
  passwordHash: r.password_hash,
  createdAt: r.created_at,
});

const USER_COLUMNS = "u.id, u.merchant_id, u.email, u.role, u.password_hash, u.created_at";

/** Inserts a user; undefined when the email is taken (one account per email, whatever the merchant). */
export async function insertUser(db: Db, u: Omit<DashboardUser, "createdAt"> & { now: Date }): Promise<DashboardUser | undefined> {
  const { rows } = await db.query<UserRow>(
    `insert into dashboard_users as u (id, merchant_id, email, role, password_hash, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $6) on conflict (email) do nothing returning ${USER_COLUMNS}`,
    [u.id, u.merchantId, u.email, u.role, u.passwordHash, u.now],
  );
  return rows[0] && toUser(rows[0]);
}

export async function findUserByEmail(db: Db, email: string): Promise<DashboardUser | undefined> {
  const { rows } = await db.query<UserRow>(`select ${USER_COLUMNS} from dashboard_users u where u.email = $1`, [email]);
  return rows[0] && toUser(rows[0]);
}

/** Stores a session by its token's hash; sessions that have expired, anyone's, are purged on the way. */
export async function insertSession(db: Db, s: { tokenHash: Buffer; userId: string; now: Date; expiresAt: Date }): Promise<void> {
  await db.query(
    `with purged as (delete from dashboard_sessions where expires_at <= $3)
     insert into dashboard_sessions (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)`,
    [s.tokenHash, s.userId, s.now, s.expiresAt],
  );
}

/** The user of an unexpired session, as the user is now (a changed role applies at once). */
export async function findSessionUser(db: Db, tokenHash: Buffer, now: Date): Promise<DashboardUser | undefined> {
  const { rows } = await db.query<UserRow>(
    `select ${USER_COLUMNS} from dashboard_sessions s join dashboard_users u on u.id = s.user_id
     where s.token_hash = $1 and s.expires_at > $2`,
    [tokenHash, now],
  );
  return rows[0] && toUser(rows[0]);
}

export async function deleteSession(db: Db, tokenHash: Buffer): Promise<void> {
  await db.query("delete from dashboard_sessions where token_hash = $1", [tokenHash]);
}

-- People who sign in to the merchant dashboard, and their sessions.

create table dashboard_users (
  id            text primary key,                        -- usr_…
  merchant_id   text not null references merchants (id),
  email         text not null,                           -- lower-cased: sign-in compares it as typed, in any case
  role          text not null check (role in ('owner', 'viewer')),
  -- scrypt$N$r$p$salt$key (base64): the parameters travel with the hash, so they can be raised later.
  password_hash text not null,
  created_at    timestamptz not null,
  updated_at    timestamptz not null
);
-- Signing in names a user by email alone.
create unique index dashboard_users_email_idx on dashboard_users (email);
create index dashboard_users_merchant_idx on dashboard_users (merchant_id);

create table dashboard_sessions (
  -- sha256 of the cookie's random token: a copy of this table cannot be replayed as a cookie.
  token_hash bytea primary key,
  user_id    text not null references dashboard_users (id) on delete cascade,
  created_at timestamptz not null,
  expires_at timestamptz not null
);
create index dashboard_sessions_user_idx on dashboard_sessions (user_id);
create index dashboard_sessions_expires_idx on dashboard_sessions (expires_at);

-- A payment's page lists its events (timeline and webhook deliveries).
create index events_payment_idx on events (payment_id, sequence) where payment_id is not null;

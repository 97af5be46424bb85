-- The transactional outbox (events), webhook endpoints, and the delivery queue with its attempt log.

-- Every state change of a payment bumps its sequence, so a receiver can drop stale updates.
alter table payments add column event_sequence integer not null default 0;

create table events (
  id          text primary key,                        -- evt_…
  merchant_id text not null references merchants (id),
  type        text not null,
  payment_id  text references payments (id),
  sequence    integer,                                 -- the payment's event_sequence at this change
  -- The serialized envelope, sent byte-for-byte on every attempt and to every endpoint.
  body        text not null,
  created_at  timestamptz not null default now()
);
create index events_merchant_created_idx on events (merchant_id, created_at desc, id desc);
create index events_merchant_type_created_idx on events (merchant_id, type, created_at desc, id desc);

create table webhook_endpoints (
  id                         text primary key,           -- we_…
  merchant_id                text not null references merchants (id),
  url                        text not null,
  description                text,
  enabled_events             text[] not null,
  disabled                   boolean not null default false,
  disabled_reason            text,
  -- whsec_… or, when LUMENPAY_ENCRYPTION_KEY is set, its AES-256-GCM ciphertext (enc:v1:…).
  secret                     text not null,
  previous_secret            text,
  previous_secret_expires_at timestamptz,
  -- Start of the current run of failures; cleared by any success. Drives automatic disabling.
  failing_since              timestamptz,
  created_at                 timestamptz not null default now(),
  updated_at                 timestamptz not null default now(),
  deleted_at                 timestamptz
);
create index webhook_endpoints_merchant_idx on webhook_endpoints (merchant_id, created_at desc, id desc);

create table webhook_deliveries (
  id              text primary key,                      -- del_…
  event_id        text not null references events (id),
  endpoint_id     text not null references webhook_endpoints (id),
  merchant_id     text not null references merchants (id),
  -- pending: queued or waiting to retry; endpoint_disabled: stored while the endpoint was off.
  status          text not null default 'pending'
                  check (status in ('pending', 'succeeded', 'failed', 'endpoint_disabled')),
  attempts        integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_by       text,
  locked_until    timestamptz,
  last_status     integer,
  last_error      text,
  event_created_at timestamptz not null,
  created_at      timestamptz not null default now(),
  completed_at    timestamptz,
  unique (event_id, endpoint_id)
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, created_at desc, id desc);

create table webhook_attempts (
  id            bigserial primary key,
  delivery_id   text not null references webhook_deliveries (id),
  attempt       integer not null,
  started_at    timestamptz not null,
  duration_ms   integer not null,
  status_code   integer,
  error_class   text,
  response_body text                                     -- first 4 KB
);
create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id, attempt);
create index webhook_attempts_started_idx on webhook_attempts (started_at);

create table webhook_recoveries (
  id          text primary key,                          -- rcv_…
  endpoint_id text not null references webhook_endpoints (id),
  since       timestamptz not null,
  until       timestamptz not null,
  requeued    integer not null default 0,
  status      text not null default 'running' check (status in ('running', 'done')),
  created_at  timestamptz not null default now(),
  finished_at timestamptz
);

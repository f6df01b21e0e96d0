-- Durable outbox of outcome events (disposition, promise, cease, dispute, qa_violation, ...), written in the
-- transaction of the event itself; webhooks deliver it at least once with the event id as idempotency key.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,    -- the idempotency key receivers dedupe on
  kind TEXT NOT NULL,
  subject TEXT,                     -- debtor id (or call id) the event is about
  payload_json TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX outbox_kind ON outbox(kind, id);

CREATE TABLE webhook_endpoints (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,             -- HMAC-SHA256 key (generated; shown once, kept in a 0600 file)
  kinds_json TEXT NOT NULL DEFAULT '[]',  -- [] = every kind
  cursor INTEGER NOT NULL,          -- outbox id up to which deliveries were fanned out
  created_at REAL NOT NULL,
  disabled_at REAL
);

CREATE TABLE webhook_deliveries (
  outbox_id INTEGER NOT NULL REFERENCES outbox(id),
  endpoint TEXT NOT NULL REFERENCES webhook_endpoints(name),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL,            -- not before (backoff)
  delivered_at REAL,
  last_status INTEGER,
  last_error TEXT,
  PRIMARY KEY (outbox_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(endpoint, delivered_at, next_at);

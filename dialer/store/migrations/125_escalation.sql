-- Escalation plan (docs/ESCALATION.md): every SMS / letter / legal-review task the daemon asked the gate for,
-- queued for the lender's gateway (with its outbox event) or blocked (the rule and when it may pass); the
-- channel caps count the queued ones. And each debtor's current stage with when to look at them again.
CREATE TABLE IF NOT EXISTS contact_tasks (
  id INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL UNIQUE,
  debtor_id TEXT NOT NULL,
  account_id TEXT,
  campaign TEXT NOT NULL,
  segment TEXT,
  stage TEXT NOT NULL,
  channel TEXT NOT NULL,            -- sms | letter | legal_review
  target TEXT,                      -- E.164 for sms; NULL for letter / legal_review (the lender has the address)
  at REAL NOT NULL,                 -- when asked (UTC epoch)
  status TEXT NOT NULL,             -- queued | blocked
  rule_id TEXT,                     -- blocked: the gate's rule id (cease, time.window, cap.daily, ...)
  reason TEXT,
  next_allowed_at REAL,             -- blocked: when it could pass (NULL = waiting cannot help)
  event_id TEXT                     -- queued: the outbox event id (the gateway's idempotency key)
);
CREATE INDEX IF NOT EXISTS contact_tasks_debtor ON contact_tasks(debtor_id, channel, at);
CREATE INDEX IF NOT EXISTS contact_tasks_status ON contact_tasks(status, at);

CREATE TABLE IF NOT EXISTS escalation_state (
  debtor_id TEXT PRIMARY KEY,
  campaign TEXT NOT NULL,
  stage TEXT,                       -- NULL: no stage applies now
  action TEXT,
  since REAL NOT NULL,              -- when the debtor entered this stage
  next_check_at REAL NOT NULL       -- when the daemon looks at the debtor's tasks again
);
CREATE INDEX IF NOT EXISTS escalation_state_next ON escalation_state(campaign, next_check_at);

-- Indexes for the core queries: screen pops per collector, promises per account, payments per account,
-- attempts in flight per debtor.
CREATE INDEX IF NOT EXISTS screen_pops_agent ON screen_pops(agent, id);
CREATE INDEX IF NOT EXISTS promises_account ON promises(account_id, status);
CREATE INDEX IF NOT EXISTS promises_call ON promises(call_id);
CREATE INDEX IF NOT EXISTS payments_account ON payments(account_id, paid_at);
CREATE INDEX IF NOT EXISTS attempts_debtor_state ON attempts(debtor_id, state);
CREATE INDEX IF NOT EXISTS debtors_campaign ON debtors(campaign, status, next_allowed_at);
CREATE INDEX IF NOT EXISTS contact_requests_debtor ON contact_requests(debtor_id, kind);

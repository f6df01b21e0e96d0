-- Compliance gate: every block with its rule id, and the do-not-call list.
CREATE TABLE gate_blocks (
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL,                 -- when the gate refused (UTC epoch)
  debtor_id TEXT NOT NULL,
  phone TEXT NOT NULL,              -- E.164 asked for
  campaign TEXT,
  call_id TEXT,                     -- the call id the dialer would have used
  third_party INTEGER NOT NULL DEFAULT 0,
  rule_id TEXT NOT NULL,            -- time.window | cap.daily | ... (CONTRACTS.md)
  reason TEXT NOT NULL,
  next_allowed_at REAL,             -- NULL = waiting cannot help (cease, dnc, ...)
  checks_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX gate_blocks_debtor ON gate_blocks(debtor_id, at);
CREATE INDEX gate_blocks_rule ON gate_blocks(rule_id, at);

CREATE TABLE dnc (
  phone TEXT PRIMARY KEY,           -- E.164
  source TEXT NOT NULL,             -- call id, 'operator', 'import', registry name
  reason TEXT,
  added_at REAL NOT NULL
);

CREATE INDEX IF NOT EXISTS gate_contact_requests_debtor ON contact_requests(debtor_id, kind);

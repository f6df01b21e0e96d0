-- Complaints (docs/COMPLAINTS.md): recorded from the regulator's hotline, the lender's customer service, ...;
-- linked to the calls that could be their cause; one QA review per complaint over those calls; the review's
-- finding puts the collector on the coaching list. Every step is audited and raises an outbox event.
CREATE TABLE complaints (
  id INTEGER PRIMARY KEY,
  received_at REAL NOT NULL,        -- when the complainant complained (UTC epoch; given, default now)
  recorded_at REAL NOT NULL,
  channel TEXT NOT NULL,            -- regulator_hotline | lender_cs | debtor_direct | letter | email | app | other
  category TEXT NOT NULL,           -- attitude | over_collection | information_leak | harassing_relatives | ...
  debtor_id TEXT,                   -- given, or found from the phone
  phone TEXT,                       -- E.164 of the number complained about (or that complained)
  text TEXT NOT NULL,
  reference TEXT,                   -- the channel's own ticket number
  recorded_by TEXT NOT NULL,
  window_days REAL NOT NULL,        -- calls placed this many days before received_at are linked
  status TEXT NOT NULL DEFAULT 'review',  -- review (QA review open) | no_calls | reviewed
  hold_id INTEGER,                  -- suppressions.id of its harassment hold (list harassment_hold)
  audit_seq INTEGER NOT NULL
);
CREATE INDEX complaints_debtor ON complaints(debtor_id, received_at);
CREATE INDEX complaints_received ON complaints(received_at);

CREATE TABLE complaint_calls (
  complaint_id INTEGER NOT NULL REFERENCES complaints(id),
  call_id TEXT NOT NULL,
  agent TEXT,                       -- the collector on the call (NULL: a bot call)
  campaign TEXT NOT NULL,
  placed_at REAL NOT NULL,
  PRIMARY KEY (complaint_id, call_id)
);
CREATE INDEX complaint_calls_call ON complaint_calls(call_id);

CREATE TABLE complaint_reviews (
  complaint_id INTEGER PRIMARY KEY REFERENCES complaints(id),
  opened_at REAL NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',    -- open | closed
  finding TEXT,                     -- substantiated | not_substantiated
  call_id TEXT,                     -- the call the finding is about
  agent TEXT,                       -- the collector it holds responsible
  rule TEXT,                        -- the rule broken (a QA rule id, a gate rule id, or complaint.<category>)
  note TEXT,
  reviewer TEXT,
  closed_at REAL,
  audit_seq INTEGER
);
CREATE INDEX complaint_reviews_status ON complaint_reviews(status);

CREATE TABLE coaching (
  id INTEGER PRIMARY KEY,
  agent TEXT NOT NULL,
  complaint_id INTEGER REFERENCES complaints(id),
  call_id TEXT,
  rule TEXT NOT NULL,
  note TEXT,
  added_at REAL NOT NULL,
  added_by TEXT NOT NULL,
  done_at REAL,                     -- coached (dialer qa coaching done ID)
  done_by TEXT
);
CREATE INDEX coaching_agent ON coaching(agent, added_at);

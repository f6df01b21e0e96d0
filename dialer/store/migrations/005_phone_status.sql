-- A phone's status is a fact with a history: when it was set, by which call (or operator), and every change.
ALTER TABLE phones ADD COLUMN status_at REAL;        -- when the current status was set (epoch seconds)
ALTER TABLE phones ADD COLUMN status_call TEXT;      -- the call that set it (NULL: an operator or an import)
ALTER TABLE phones ADD COLUMN status_actor TEXT;     -- dialer | operator | import

CREATE TABLE phone_status_history (
  id INTEGER PRIMARY KEY,
  debtor_id TEXT NOT NULL,
  phone TEXT NOT NULL,
  status TEXT NOT NULL,             -- ok | wrong_number | unallocated | dnc | removed
  previous TEXT,
  at REAL NOT NULL,
  call_id TEXT,
  actor TEXT NOT NULL,
  reason TEXT
);
CREATE INDEX phone_status_history_phone ON phone_status_history(phone, at);
CREATE INDEX phone_status_history_debtor ON phone_status_history(debtor_id, at);

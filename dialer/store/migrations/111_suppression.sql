-- Suppression lists fed in bulk from the lender's systems (dialer suppress import FILE --list NAME).
-- One row per entry: a phone, a debtor or an account on a list, from an effective time, with its source.
-- Removal never deletes: removed_at/removed_by/removed_reason are set and the change is audited.
CREATE TABLE suppressions (
  id INTEGER PRIMARY KEY,
  list TEXT NOT NULL,               -- dnc | attorney | bankruptcy | deceased | complaint_hold
  key_kind TEXT NOT NULL,           -- phone | debtor | account
  key TEXT NOT NULL,                -- E.164, debtor_id or account_id
  effective TEXT NOT NULL,          -- the effective date (or date-time) as given
  effective_at REAL NOT NULL,       -- UTC epoch from which the gate honours it
  source TEXT NOT NULL,             -- the system or person that listed it
  note TEXT,
  file TEXT,                        -- the file (or 'api') it came from
  added_at REAL NOT NULL,
  removed_at REAL,
  removed_by TEXT,
  removed_reason TEXT
);
CREATE UNIQUE INDEX suppressions_live ON suppressions(list, key_kind, key) WHERE removed_at IS NULL;
CREATE INDEX suppressions_key ON suppressions(key_kind, key);

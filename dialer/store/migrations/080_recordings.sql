-- Recordings: one row per leg file of a call (dialer/store/recordings.py). The file's SHA-256 is also in
-- the audit log (kind qa.recording, entry `audit_seq`); a pruned file keeps its row with pruned_at set and
-- its deletion in the audit log (kind recording.pruned), so `dialer audit verify` tells pruned from deleted.
CREATE TABLE recordings (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL,
  leg TEXT NOT NULL,             -- callee | heard | mix | collector | collector-heard | collector-mix
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  seconds REAL NOT NULL,
  campaign TEXT,
  debtor_id TEXT,
  agent TEXT,                    -- the collector connected, if any
  profile TEXT,                  -- the compliance profile whose retention applies
  started_at REAL,               -- the call's placed time
  sealed_at REAL NOT NULL,       -- hashed into the audit log
  audit_seq INTEGER NOT NULL,
  pruned_at REAL,
  UNIQUE (call_id, leg)
);
CREATE INDEX recordings_started ON recordings(started_at);

-- Live QA of collector calls (dialer/qa/live.py): one row per rule hit while the call was up; also in the
-- audit log (kind qa.live_alert).
CREATE TABLE live_alerts (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL,
  agent TEXT,
  rule TEXT NOT NULL,
  policy TEXT NOT NULL,          -- alert | whisper | end (compliance_rules.yaml qa.live)
  evidence TEXT NOT NULL,        -- what the recogniser heard
  confidence REAL,
  phrase_start REAL NOT NULL,    -- seconds on the tap's clock
  phrase_end REAL NOT NULL,
  latency REAL NOT NULL,         -- end of the phrase to the alert, seconds
  raised_at REAL NOT NULL,       -- wall clock
  action TEXT,                   -- what was done: whispered | ended | none | failed: …
  audit_seq INTEGER NOT NULL
);
CREATE INDEX live_alerts_call ON live_alerts(call_id);

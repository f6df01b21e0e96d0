-- Compliance QA: transcripts (bot calls write their own; recordings are transcribed into the same shape),
-- searchable turns, scores, appeals and their reviews. Every score, appeal and review is also appended
-- to the one hash-chained audit_log (001_core.sql) in the same transaction.

CREATE TABLE transcripts (
  call_id TEXT PRIMARY KEY,
  lang TEXT NOT NULL,                -- zh | en
  jurisdiction TEXT NOT NULL,        -- cn | us | uk (the compliance profile)
  started_at TEXT NOT NULL,          -- ISO 8601 with the debtor's UTC offset
  started_epoch REAL NOT NULL,       -- the same instant, UTC epoch seconds
  turns_json TEXT NOT NULL,          -- [{"speaker", "text", "start", "end"}]
  agent TEXT,                        -- collector name, or 'bot'
  campaign TEXT,
  source TEXT NOT NULL DEFAULT 'import',   -- bot | import | asr
  sha256 TEXT NOT NULL,              -- of the canonical transcript JSON, also in the audit entry
  saved_at REAL NOT NULL
);
CREATE INDEX transcripts_agent ON transcripts(agent);
CREATE INDEX transcripts_campaign ON transcripts(campaign);

CREATE TABLE transcript_turns (
  call_id TEXT NOT NULL REFERENCES transcripts(call_id),
  idx INTEGER NOT NULL,
  speaker TEXT NOT NULL,             -- agent | callee
  text TEXT NOT NULL,                -- as said
  norm TEXT NOT NULL,                -- matching form (Simplified, half-width, case-folded) for search
  PRIMARY KEY (call_id, idx)
);

CREATE TABLE qa_results (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL REFERENCES transcripts(call_id),
  scored_at REAL NOT NULL,
  score INTEGER NOT NULL,            -- 0..100
  violations_json TEXT NOT NULL,     -- [{"rule", "turn", "evidence"}]
  rules_sha256 TEXT NOT NULL,        -- of the rules file the score was computed with
  audit_seq INTEGER NOT NULL
);
CREATE INDEX qa_results_call ON qa_results(call_id, id);

CREATE TABLE qa_appeals (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL REFERENCES transcripts(call_id),
  result_id INTEGER NOT NULL REFERENCES qa_results(id),
  reason TEXT NOT NULL,
  filed_by TEXT NOT NULL,
  filed_at REAL NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',   -- open | upheld | overturned
  audit_seq INTEGER NOT NULL
);
CREATE INDEX qa_appeals_call ON qa_appeals(call_id, id);

CREATE TABLE qa_reviews (
  id INTEGER PRIMARY KEY,
  appeal_id INTEGER NOT NULL REFERENCES qa_appeals(id),
  call_id TEXT NOT NULL,
  verdict TEXT NOT NULL,             -- upheld | overturned
  rules_json TEXT NOT NULL,          -- rules the verdict covers ([] = every violation of the result)
  reviewer TEXT NOT NULL,
  note TEXT,
  reviewed_at REAL NOT NULL,
  effective_score INTEGER NOT NULL,  -- score after the verdict
  audit_seq INTEGER NOT NULL
);

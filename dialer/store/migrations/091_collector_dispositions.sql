-- What a collector entered after a call (`dialer agent dispo`), or `not_entered` when the wrap-up ran out
-- first; one per call. And a collector's wrap-up started or extended by hand (`dialer agent wrapup`).
CREATE TABLE collector_dispositions (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL UNIQUE,
  agent TEXT NOT NULL,
  debtor_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  amount TEXT,            -- promise: decimal as text (NULL = full balance)
  date TEXT,              -- promise: ISO date; callback: ISO date-time with offset
  note TEXT,
  source TEXT NOT NULL CHECK (source IN ('collector', 'wrapup_timeout')),
  at REAL NOT NULL
);
CREATE INDEX collector_dispositions_agent ON collector_dispositions(agent, at);

CREATE TABLE agent_wrapup (
  agent TEXT PRIMARY KEY,
  until REAL NOT NULL
);

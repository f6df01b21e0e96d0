-- Several dialer servers on one store (docs/STORE.md "Several servers").
-- Which server placed an attempt: it alone settles the attempt from its own CDR (NULL: placed before
-- servers had names, settled by whichever server restarts first, as before).
ALTER TABLE attempts ADD COLUMN server_id TEXT;
CREATE INDEX IF NOT EXISTS attempts_server_open ON attempts(server_id, state);

-- One row per dialer server: its heartbeat (renewed by the daemon while it runs), lines in use and limit.
CREATE TABLE IF NOT EXISTS servers (
  server_id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at REAL NOT NULL,
  heartbeat_at REAL NOT NULL,
  lines_in_use INTEGER NOT NULL DEFAULT 0,
  line_limit INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'running'    -- running | stopped
);

-- The leased hopper: a debtor a server has claimed to dial now. Another server skips it until the lease
-- expires (a server that died before placing the call gives its debtors back that way).
CREATE TABLE IF NOT EXISTS hopper_leases (
  debtor_id TEXT PRIMARY KEY,
  campaign TEXT NOT NULL,
  server_id TEXT NOT NULL,
  leased_at REAL NOT NULL,
  expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS hopper_leases_server ON hopper_leases(server_id, expires_at);

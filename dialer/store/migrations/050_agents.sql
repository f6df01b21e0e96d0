-- Collectors' desired state, set by `dialer agent login|ready|pause|logout` and applied by the daemon.
-- No row = logged in and ready (the harness's phones work without anyone logging them in).
CREATE TABLE agents (
  name TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('ready', 'paused', 'logged_out')),
  since REAL NOT NULL,
  reason TEXT
);

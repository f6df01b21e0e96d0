-- Strategy: the latest propensity score and treatment per debtor (re-scored nightly or on each outcome).
CREATE TABLE strategy_scores (
  debtor_id TEXT PRIMARY KEY REFERENCES debtors(debtor_id),
  propensity REAL,                 -- NULL when no model could score the debtor
  quadrant TEXT NOT NULL,          -- willing_able | willing_unable | unwilling_able | unwilling_unable
  band TEXT,                       -- propensity band of the campaign's strategy table
  bucket TEXT NOT NULL,            -- M0 | M1 | M2 | M3 | M3+
  treatment_json TEXT NOT NULL DEFAULT '{}',  -- script, dial mode, cadence, escalation chosen
  best_hour INTEGER,               -- debtor-local hour with the best contact rate so far
  model TEXT NOT NULL,             -- data hash of the model that scored (or 'fallback')
  reason TEXT NOT NULL,            -- nightly | outcome | manual
  scored_at REAL NOT NULL
);
CREATE INDEX strategy_scores_scored ON strategy_scores(scored_at);

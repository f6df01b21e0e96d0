-- Preview dialing: the next debtor offered to a ready collector, who accepts (only then is a call placed,
-- collector's phone first, through the gate), skips (with a reason) or lets the offer time out.
CREATE TABLE preview_offers (
  id INTEGER PRIMARY KEY,
  agent TEXT NOT NULL,
  campaign TEXT NOT NULL,
  debtor_id TEXT NOT NULL,
  account_id TEXT,
  segment TEXT,
  offered_at REAL NOT NULL,
  expires_at REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('offered', 'accepted', 'dialing', 'placed', 'done', 'skipped',
                                       'expired', 'blocked', 'failed')),
  reason TEXT,                 -- skip reason, gate rule id, or why the collector's phone failed
  call_id TEXT,                -- the attempt, once the gate allowed the dial
  verdict_json TEXT NOT NULL,  -- the gate's verdict when offered (shown on the collector's screen)
  decided_at REAL
);
-- at most one open offer per collector and per debtor: two collectors never preview the same person
CREATE UNIQUE INDEX preview_open_agent ON preview_offers(agent)
  WHERE state IN ('offered', 'accepted', 'dialing', 'placed');
CREATE UNIQUE INDEX preview_open_debtor ON preview_offers(debtor_id)
  WHERE state IN ('offered', 'accepted', 'dialing', 'placed');

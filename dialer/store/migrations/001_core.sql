-- Core schema shared by every area. Times are UTC epoch seconds (REAL) unless named *_date.
CREATE TABLE campaigns (
  name TEXT PRIMARY KEY,
  file TEXT NOT NULL,
  profile TEXT NOT NULL,            -- compliance profile: cn | us | uk
  locale TEXT NOT NULL,             -- zh-CN | en-US
  dial_mode TEXT NOT NULL,          -- preview | progressive | predictive | bot_only
  line_limit INTEGER NOT NULL,
  config_json TEXT NOT NULL,        -- the validated campaign, as loaded
  status TEXT NOT NULL DEFAULT 'active',
  loaded_at REAL NOT NULL
);

CREATE TABLE debtors (
  debtor_id TEXT PRIMARY KEY,
  campaign TEXT NOT NULL REFERENCES campaigns(name),
  name TEXT NOT NULL,
  id_last4 TEXT,
  birth_year INTEGER,
  timezone TEXT,                    -- IANA, or NULL (then the phone number's zones)
  customer_type TEXT NOT NULL,      -- first | repeat | wilful
  lang TEXT NOT NULL,               -- zh | en
  segment TEXT,                     -- segment name chosen at import (re-chosen by strategy)
  propensity REAL,                  -- latest model score, NULL until scored
  status TEXT NOT NULL DEFAULT 'active',   -- active | done | cease | closed
  next_allowed_at REAL,             -- set by the gate / retry rules; NULL = now
  imported_at REAL NOT NULL
);

CREATE TABLE accounts (
  account_id TEXT PRIMARY KEY,
  debtor_id TEXT NOT NULL REFERENCES debtors(debtor_id),
  amount_owed TEXT NOT NULL,        -- decimal as text, exact
  currency TEXT NOT NULL,
  days_past_due INTEGER NOT NULL,
  due_date TEXT,                    -- ISO date
  bucket TEXT NOT NULL              -- M0 | M1 | M2 | M3 | M3+
);
CREATE INDEX accounts_debtor ON accounts(debtor_id);

CREATE TABLE phones (
  debtor_id TEXT NOT NULL REFERENCES debtors(debtor_id),
  phone TEXT NOT NULL,              -- E.164
  rank INTEGER NOT NULL,            -- 0 = primary
  status TEXT NOT NULL DEFAULT 'ok',  -- ok | wrong_number | unallocated | dnc
  PRIMARY KEY (debtor_id, phone)
);
CREATE INDEX phones_phone ON phones(phone);

CREATE TABLE contacts (
  id INTEGER PRIMARY KEY,
  debtor_id TEXT NOT NULL REFERENCES debtors(debtor_id),
  name TEXT NOT NULL,
  relation TEXT NOT NULL,
  phone TEXT NOT NULL
);

-- One row per dial attempt, written in the same transaction the gate allows it.
-- id is our call id, passed to Asterisk as Originate ChannelId.
CREATE TABLE attempts (
  id TEXT PRIMARY KEY,
  debtor_id TEXT NOT NULL REFERENCES debtors(debtor_id),
  account_id TEXT,
  campaign TEXT NOT NULL,
  phone TEXT NOT NULL,
  third_party INTEGER NOT NULL DEFAULT 0,  -- dialled a contact, not the debtor
  inbound INTEGER NOT NULL DEFAULT 0,
  placed_at REAL NOT NULL,
  state TEXT NOT NULL DEFAULT 'placed',    -- placed | ringing | answered | ended | unknown
  outcome TEXT,                  -- answered | busy | no_answer | failed | unallocated | machine | abandoned | callee_hangup | unknown
  dial_status TEXT,              -- DialEnd DialStatus
  hangup_cause INTEGER,          -- Q.850 cause
  answered_at REAL,
  ended_at REAL,
  conversation INTEGER NOT NULL DEFAULT 0, -- right party spoken to about the debt
  abandoned INTEGER NOT NULL DEFAULT 0,
  machine INTEGER NOT NULL DEFAULT 0,
  agent TEXT,
  disposition TEXT               -- promise | hardship | dispute | refused | wrong_number | third_party | callback | cease | transfer | no_verification
);
CREATE INDEX attempts_debtor ON attempts(debtor_id, placed_at);
CREATE INDEX attempts_phone ON attempts(phone, placed_at);
CREATE INDEX attempts_open ON attempts(state);

CREATE TABLE call_events (
  id INTEGER PRIMARY KEY,
  call_id TEXT NOT NULL,
  at REAL NOT NULL,
  kind TEXT NOT NULL,
  data_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX call_events_call ON call_events(call_id);

CREATE TABLE promises (
  id INTEGER PRIMARY KEY,
  call_id TEXT,
  debtor_id TEXT NOT NULL,
  account_id TEXT,
  amount TEXT,                   -- decimal as text; NULL = full balance
  due_date TEXT NOT NULL,        -- ISO date
  created_at REAL NOT NULL,
  status TEXT NOT NULL DEFAULT 'open'   -- open | kept | broken
);

CREATE TABLE payments (
  id INTEGER PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(account_id),
  paid_at TEXT NOT NULL,
  amount TEXT NOT NULL,
  currency TEXT NOT NULL,
  reference TEXT NOT NULL UNIQUE,
  imported_at REAL NOT NULL
);

-- Contact requests honoured by the gate: cease, inconvenient times/places, consent.
CREATE TABLE contact_requests (
  id INTEGER PRIMARY KEY,
  debtor_id TEXT NOT NULL,
  kind TEXT NOT NULL,            -- cease | inconvenient | consent | callback
  detail_json TEXT NOT NULL DEFAULT '{}',
  created_at REAL NOT NULL,
  source TEXT NOT NULL           -- call id, 'operator', 'import'
);

-- What a collector sees when a call reaches them (dialer agent watch).
CREATE TABLE screen_pops (
  id INTEGER PRIMARY KEY,
  agent TEXT NOT NULL,
  call_id TEXT NOT NULL,
  debtor_id TEXT NOT NULL,
  context_json TEXT NOT NULL,
  at REAL NOT NULL
);

-- The one audit log: append-only, hash-chained (hash = sha256(prev_hash || canonical row)).
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT,
  payload_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

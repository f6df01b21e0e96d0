-- Payments settle balances (lender systems, issue 25). accounts.amount_owed is the CURRENT balance: the
-- debtor file's figure, reduced by every payment imported after it and restored by a reversal.
-- A reversal is a payments-file row with a negative amount and the original payment's reference.
CREATE TABLE payment_reversals (
  id INTEGER PRIMARY KEY,
  payment_id INTEGER NOT NULL UNIQUE REFERENCES payments(id),  -- one reversal per payment, of its whole amount
  reversed_at TEXT NOT NULL,        -- the row's paid_at (ISO date or date-time)
  amount TEXT NOT NULL,             -- negative, decimal as text
  imported_at REAL NOT NULL,
  file TEXT
);

-- Promises settled by the payments against them (kept | partly_kept | broken), with what was counted.
ALTER TABLE promises ADD COLUMN paid_by_payments TEXT;        -- decimal as text: payments counted
ALTER TABLE promises ADD COLUMN payments_settled_at REAL;     -- when the payments last settled it

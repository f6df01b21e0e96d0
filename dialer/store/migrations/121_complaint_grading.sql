-- Complaints, second step (docs/COMPLAINTS.md): the profile's settings a complaint was taken under, its severity and
-- due time, frequency complaints that link every attempt (with the attempt counts against the caps), the review's
-- finding against the campaign's owner when no collector was on the line, and each complaint's own hold (a hold
-- two complaints put is lifted only when both are released).
ALTER TABLE complaints ADD COLUMN profile TEXT;
ALTER TABLE complaints ADD COLUMN severity TEXT;             -- minor | moderate | serious
ALTER TABLE complaints ADD COLUMN due_at REAL;               -- the review's deadline (received_at + due hours)
ALTER TABLE complaints ADD COLUMN link_scope TEXT;           -- answered (answered calls) | attempts (every attempt)
ALTER TABLE complaints ADD COLUMN attempts_json TEXT;        -- attempts per local day / 7 days against the caps
ALTER TABLE complaints ADD COLUMN hold_released_at REAL;     -- this complaint's hold released (the list entry stays
ALTER TABLE complaints ADD COLUMN hold_released_by TEXT;     -- while another complaint still holds it)
ALTER TABLE complaints ADD COLUMN hold_release_reason TEXT;
CREATE INDEX IF NOT EXISTS complaints_due ON complaints(status, due_at);
ALTER TABLE complaint_reviews ADD COLUMN responsible TEXT;   -- collector | owner (the campaign's owner)
ALTER TABLE coaching ADD COLUMN kind TEXT NOT NULL DEFAULT 'collector';   -- collector | campaign_owner
ALTER TABLE coaching ADD COLUMN campaign TEXT;

-- QA 2: the three outcomes. A score now also keeps its needs-review items (rule, turn, confidence,
-- evidence, reason) and which engine produced it: `model` (sentence-embedding detectors + lexicons) or
-- `lexicon` (version 1). The review queue of `dialer qa report` is the review items of each call's
-- latest result. (Numbered above every worktree's migrations to avoid clashes; QA's range is 020–029.)
ALTER TABLE qa_results ADD COLUMN review_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE qa_results ADD COLUMN engine TEXT NOT NULL DEFAULT 'lexicon';
ALTER TABLE transcripts ADD COLUMN institution TEXT;   -- the campaign's institution (naming it is identity)

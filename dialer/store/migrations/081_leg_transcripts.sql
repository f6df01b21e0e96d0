-- What the recogniser heard in each recorded leg (dialer/qa/transcribe.py), one row per leg, committed as
-- each leg is done: `dialer qa transcribe` resumes after a crash without losing or redoing a leg. The call's
-- transcript (transcripts, source 'asr') is saved once both of its legs are here.
CREATE TABLE leg_transcripts (
  call_id TEXT NOT NULL,
  leg TEXT NOT NULL,             -- callee | heard
  speaker TEXT NOT NULL,         -- callee | agent
  turns_json TEXT NOT NULL,      -- [{"speaker", "text", "start", "end", "confidence"}]
  audio_seconds REAL NOT NULL,   -- length of the leg
  speech_seconds REAL NOT NULL,  -- what the VAD passed to the recogniser
  cpu_seconds REAL NOT NULL,
  recording_sha256 TEXT NOT NULL,
  backend TEXT NOT NULL,
  transcribed_at REAL NOT NULL,
  PRIMARY KEY (call_id, leg)
);

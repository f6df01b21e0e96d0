"""A call's media: prompts (tts); the live-audio work adds the RTP tap, VAD, ASR and barge-in here."""

"""What the daemon is doing, for the people watching it: an in-process event bus (bus.py) carrying the typed
call events of calls/events.py and the facts of events.py here, and its subscribers — the run's tally
(tally.py), the daemon's own narration (narrate.py), Prometheus metrics (metrics.py) and the live floor view
(floor.py) served by the wallboard (wallboard.py). No call step knows any subscriber exists (docs/OBSERVE.md)."""

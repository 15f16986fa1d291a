"""State shared by the processes of one deployment through Redis (realtime.adapter = redis):
presence, cache invalidations, revocations, rate-limit counters and recoverable sessions.
See docs/scaling.md. Nothing here is used with the in-memory adapter."""

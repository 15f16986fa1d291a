-- Access tokens carry their session id; every process reads the sessions revoked since its
-- last look (nexus_chat/revocation.py) and refuses their access tokens at once.
ALTER TABLE sessions ADD KEY IF NOT EXISTS ix_sessions_revoked (revoked_at);

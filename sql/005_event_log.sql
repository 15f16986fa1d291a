-- The event log: every event the server sends to clients that is worth having later (not
-- typing or presence), in commit order, for connection-state recovery and the REST catch-up
-- (GET /api/chat/events). `offset` is what clients see (as a string). Rows are written by one
-- writer per process, a batch per transaction, so offsets commit in increasing order.
CREATE TABLE event_log (
  `offset`       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  event          VARCHAR(40)     NOT NULL,
  payload        LONGTEXT        NOT NULL,   -- the JSON the clients receive
  except_users   VARCHAR(400)    NULL,       -- comma-separated user ids left out
  except_socket  VARCHAR(40)     NULL,       -- the connection that got it as its ack
  created_at     DATETIME(3)     NOT NULL,
  PRIMARY KEY (`offset`),
  KEY ix_event_log_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who an event is for: users ('u') and groups ('g'). A user's events after an offset are
-- the rows of their id and of their current groups, read through (target_id, offset).
CREATE TABLE event_log_targets (
  `offset`   BIGINT UNSIGNED NOT NULL,
  kind       CHAR(1)         NOT NULL,
  target_id  CHAR(36)        NOT NULL,
  PRIMARY KEY (target_id, `offset`),
  KEY ix_event_log_targets_offset (`offset`),
  CONSTRAINT fk_event_log_targets FOREIGN KEY (`offset`) REFERENCES event_log (`offset`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Disconnected Socket.IO sessions that may be recovered: the private id (pid) the client
-- presents, stored as its SHA-256, with the socket id to restore and where its events start.
CREATE TABLE recovery_sessions (
  pid_hash     CHAR(64)        NOT NULL,
  sid          VARCHAR(40)     NOT NULL,
  user_id      CHAR(36)        NOT NULL,
  base_offset  BIGINT UNSIGNED NOT NULL,
  expires_at   DATETIME(3)     NOT NULL,
  PRIMARY KEY (pid_hash),
  KEY ix_recovery_sessions_expires (expires_at),
  CONSTRAINT fk_recovery_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

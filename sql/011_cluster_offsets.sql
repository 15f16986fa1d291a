-- Offsets that stay exact across processes (docs/scaling.md#connection-state-recovery).
--
-- Each event-log writer (one per running `nexus-chat serve`, a new one at each start) takes a
-- row here; its events carry its id. A writer appends its batches one transaction after the
-- other, so *within one writer* offsets commit in increasing order, which is not true across
-- writers. A client's position is therefore a vector (writer -> last offset received), see
-- nexus_chat/offsets.py. Rows from before this migration have writer NULL (an old writer
-- nobody's position names).
CREATE TABLE event_writers (
  id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
  started_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE event_log ADD COLUMN writer INT UNSIGNED NULL AFTER `offset`;

-- Where a kept session's events start, as a position (nexus_chat/offsets.py). Sessions kept
-- by the previous version have none: they are not recovered (the client gets a new session
-- and catches up over REST), which only concerns the sessions of the few minutes around the
-- upgrade.
ALTER TABLE recovery_sessions ADD COLUMN base_position VARCHAR(2100) NULL;

-- Each event-log writer's events in offset order (docs/scaling.md#connection-state-recovery):
-- recovery finds, with one seek per writer, the first event a writer stored after a client's
-- position (so it reads from there, not from the oldest offset the position names), and a
-- process that subscribes to Redis again reads the events each other writer stored while it
-- was away. The primary key is part of every InnoDB index, so (writer) alone orders by offset
-- within a writer; `offset` is named to say so.
ALTER TABLE event_log ADD KEY ix_event_log_writer (writer, `offset`);

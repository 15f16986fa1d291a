-- Message lifecycle: edits, tombstone deletes, reactions, replies, and one read pointer per
-- member and conversation/group. Applies to a database holding 001 (and 002) data: new
-- columns have defaults, and read pointers are seeded from what was already read.

-- edited_at: the current content was written then (NULL: never edited).
-- deleted_at/deleted_by: a tombstone (content emptied); the row stays so that cursors,
-- replies and unread counts keep their positions.
-- reply_to_id: a message of the same conversation or group (checked by the service); no
-- foreign key, as the original is only ever removed together with its whole conversation.
ALTER TABLE messages
  ADD COLUMN edited_at   DATETIME(3) NULL,
  ADD COLUMN deleted_at  DATETIME(3) NULL,
  ADD COLUMN deleted_by  CHAR(36)    NULL,
  ADD COLUMN reply_to_id CHAR(36)    NULL,
  ADD KEY ix_messages_reply_to (reply_to_id),
  ADD CONSTRAINT fk_messages_deleted_by FOREIGN KEY (deleted_by) REFERENCES users (id) ON DELETE SET NULL;

-- Earlier versions of an edited message: one row per edit, holding the content it replaced.
CREATE TABLE message_edits (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  message_seq BIGINT UNSIGNED NOT NULL,
  content     TEXT        NOT NULL,
  written_at  DATETIME(3) NOT NULL,
  replaced_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_message_edits_message (message_seq, id),
  CONSTRAINT fk_message_edits_message FOREIGN KEY (message_seq) REFERENCES messages (seq) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per (message, emoji, user). The emoji compares byte for byte: the unicode
-- collation would take many different emoji for equal.
CREATE TABLE message_reactions (
  message_seq BIGINT UNSIGNED NOT NULL,
  emoji       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_id     CHAR(36)    NOT NULL,
  created_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (message_seq, emoji, user_id),
  KEY ix_message_reactions_user (user_id),
  CONSTRAINT fk_message_reactions_message FOREIGN KEY (message_seq) REFERENCES messages (seq) ON DELETE CASCADE,
  CONSTRAINT fk_message_reactions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- How far a member has read a conversation or group: everything up to last_read_seq.
-- chat_id is the conversation's or the group's id (whichever is set), so one key serves both.
CREATE TABLE read_pointers (
  chat_id         CHAR(36)        NOT NULL,
  user_id         CHAR(36)        NOT NULL,
  conversation_id CHAR(36)        NULL,
  group_id        CHAR(36)        NULL,
  last_read_seq   BIGINT UNSIGNED NOT NULL,
  read_at         DATETIME(3)     NOT NULL,
  PRIMARY KEY (chat_id, user_id),
  KEY ix_read_pointers_user (user_id),
  CONSTRAINT ck_read_pointers_chat CHECK (chat_id = COALESCE(conversation_id, group_id)),
  CONSTRAINT fk_read_pointers_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_read_pointers_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
  CONSTRAINT fk_read_pointers_group FOREIGN KEY (group_id) REFERENCES chat_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Profile setting: FALSE leaves the user out of others' read receipts.
ALTER TABLE users ADD COLUMN send_read_receipts TINYINT(1) NOT NULL DEFAULT 1;

-- 1-on-1: a participant has read up to the newest message of the other one marked is_read.
INSERT INTO read_pointers (chat_id, user_id, conversation_id, group_id, last_read_seq, read_at)
SELECT m.conversation_id, IF(m.sender_id = c.user_low_id, c.user_high_id, c.user_low_id),
       m.conversation_id, NULL, MAX(m.seq), MAX(COALESCE(m.read_at, m.created_at))
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.is_read = 1 AND m.sender_id IS NOT NULL
GROUP BY m.conversation_id, IF(m.sender_id = c.user_low_id, c.user_high_id, c.user_low_id);

-- Groups had no read state: what members could already see counts as read, so nobody
-- finds every old group message unread after the upgrade.
INSERT INTO read_pointers (chat_id, user_id, conversation_id, group_id, last_read_seq, read_at)
SELECT gm.group_id, gm.user_id, NULL, gm.group_id, MAX(m.seq), UTC_TIMESTAMP(3)
FROM group_members gm JOIN messages m ON m.group_id = gm.group_id
GROUP BY gm.group_id, gm.user_id;

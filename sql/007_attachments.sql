-- Files attached to messages (POST /api/chat/attachments, then sendMessage attachmentIds).
-- An upload belongs to its uploader until it is attached; message_id is set once, when the
-- message that carries it is stored. Deleting the message, the uploader's account, or (via the
-- message) its conversation or group removes the rows; the sweeper removes the files whose
-- row is gone and uploads never attached.
CREATE TABLE attachments (
  id            CHAR(36)         NOT NULL,
  uploader_id   CHAR(36)         NOT NULL,
  message_id    CHAR(36)         NULL,
  position      TINYINT UNSIGNED NOT NULL DEFAULT 0,
  kind          ENUM('image','video','file') NOT NULL,
  mime_type     VARCHAR(100)     NOT NULL,
  size          BIGINT UNSIGNED  NOT NULL,
  name          VARCHAR(255)     NOT NULL,
  width         INT UNSIGNED     NULL,
  height        INT UNSIGNED     NULL,
  has_thumbnail TINYINT(1)       NOT NULL DEFAULT 0,
  created_at    DATETIME(3)      NOT NULL,
  PRIMARY KEY (id),
  KEY ix_attachments_message (message_id, position),
  KEY ix_attachments_uploader (uploader_id, message_id),
  KEY ix_attachments_unattached (message_id, created_at),
  CONSTRAINT fk_attachments_uploader FOREIGN KEY (uploader_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_attachments_message FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Nexus Chat schema. Ids are UUID v4 strings; times are UTC DATETIME(3).
-- utf8mb4_unicode_ci makes username/e-mail uniqueness case-insensitive.

CREATE TABLE users (
  id                CHAR(36)     NOT NULL,
  username          VARCHAR(50)  NOT NULL,
  full_name         VARCHAR(100) NOT NULL,
  email             VARCHAR(255) NOT NULL,
  password_hash     VARCHAR(100) NOT NULL,
  avatar_url        VARCHAR(255) NULL,
  bio               VARCHAR(500) NULL,
  email_verified_at DATETIME(3)  NULL,
  status            ENUM('online','offline','away','busy') NOT NULL DEFAULT 'offline',
  last_seen_at      DATETIME(3)  NULL,
  created_at        DATETIME(3)  NOT NULL,
  updated_at        DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_users_username (username),
  UNIQUE KEY uq_users_email (email),
  KEY ix_users_full_name (full_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per login (device). Only a SHA-256 of the current refresh token is kept.
CREATE TABLE sessions (
  id                 CHAR(36)    NOT NULL,
  user_id            CHAR(36)    NOT NULL,
  refresh_token_hash CHAR(64)    NOT NULL,
  created_at         DATETIME(3) NOT NULL,
  last_used_at       DATETIME(3) NOT NULL,
  expires_at         DATETIME(3) NOT NULL,
  revoked_at         DATETIME(3) NULL,
  PRIMARY KEY (id),
  KEY ix_sessions_user (user_id),
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Password reset tokens already spent (single use); rows can go once expired.
CREATE TABLE used_tokens (
  jti        CHAR(36)    NOT NULL,
  user_id    CHAR(36)    NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  PRIMARY KEY (jti),
  KEY ix_used_tokens_expires (expires_at),
  CONSTRAINT fk_used_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE contacts (
  id              CHAR(36)     NOT NULL,
  owner_id        CHAR(36)     NOT NULL,
  contact_user_id CHAR(36)     NOT NULL,
  alias           VARCHAR(100) NOT NULL,
  created_at      DATETIME(3)  NOT NULL,
  updated_at      DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_contacts_owner_user (owner_id, contact_user_id),
  KEY ix_contacts_user_owner (contact_user_id, owner_id),
  CONSTRAINT fk_contacts_owner FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_contacts_user FOREIGN KEY (contact_user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A 1-on-1 conversation; (user_low_id, user_high_id) is the ordered pair, unique whoever wrote first.
CREATE TABLE conversations (
  id              CHAR(36)    NOT NULL,
  creator_id      CHAR(36)    NOT NULL,
  recipient_id    CHAR(36)    NOT NULL,
  user_low_id     CHAR(36)    NOT NULL,
  user_high_id    CHAR(36)    NOT NULL,
  created_at      DATETIME(3) NOT NULL,
  updated_at      DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_conversations_pair (user_low_id, user_high_id),
  KEY ix_conversations_high (user_high_id),
  CONSTRAINT fk_conversations_creator FOREIGN KEY (creator_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_conversations_recipient FOREIGN KEY (recipient_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- `groups` is a reserved word in MySQL 8.
CREATE TABLE chat_groups (
  id          CHAR(36)     NOT NULL,
  name        VARCHAR(100) NOT NULL,
  description VARCHAR(255) NULL,
  icon_url    VARCHAR(255) NULL,
  owner_id    CHAR(36)     NOT NULL,
  created_at  DATETIME(3)  NOT NULL,
  updated_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_groups_owner (owner_id),
  CONSTRAINT fk_groups_owner FOREIGN KEY (owner_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE group_members (
  group_id  CHAR(36)    NOT NULL,
  user_id   CHAR(36)    NOT NULL,
  role      ENUM('owner','admin','member') NOT NULL DEFAULT 'member',
  joined_at DATETIME(3) NOT NULL,
  PRIMARY KEY (group_id, user_id),
  KEY ix_group_members_user (user_id),
  CONSTRAINT fk_group_members_group FOREIGN KEY (group_id) REFERENCES chat_groups (id) ON DELETE CASCADE,
  CONSTRAINT fk_group_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- seq orders messages in commit order (history newest first = seq DESC) and clusters the
-- table by insertion; id is the public identifier.
CREATE TABLE messages (
  seq               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  id                CHAR(36)    NOT NULL,
  conversation_id   CHAR(36)    NULL,
  group_id          CHAR(36)    NULL,
  sender_id         CHAR(36)    NULL,
  content           TEXT        NOT NULL,
  client_message_id VARCHAR(64) NULL,
  is_read           TINYINT(1)  NOT NULL DEFAULT 0,
  read_at           DATETIME(3) NULL,
  created_at        DATETIME(3) NOT NULL,
  updated_at        DATETIME(3) NOT NULL,
  PRIMARY KEY (seq),
  UNIQUE KEY uq_messages_id (id),
  UNIQUE KEY uq_messages_client_id (sender_id, client_message_id),
  KEY ix_messages_conversation (conversation_id, seq),
  KEY ix_messages_group (group_id, seq),
  KEY ix_messages_unread (conversation_id, is_read, sender_id),
  CONSTRAINT fk_messages_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
  CONSTRAINT fk_messages_group FOREIGN KEY (group_id) REFERENCES chat_groups (id) ON DELETE CASCADE,
  CONSTRAINT fk_messages_sender FOREIGN KEY (sender_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE stories (
  id         CHAR(36)     NOT NULL,
  user_id    CHAR(36)     NOT NULL,
  image_url  VARCHAR(255) NULL,
  video_url  VARCHAR(255) NULL,
  caption    VARCHAR(255) NULL,
  expires_at DATETIME(3)  NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  updated_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_stories_user_expires (user_id, expires_at),
  KEY ix_stories_expires (expires_at),
  CONSTRAINT fk_stories_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE story_views (
  story_id  CHAR(36)    NOT NULL,
  viewer_id CHAR(36)    NOT NULL,
  seen_at   DATETIME(3) NOT NULL,
  PRIMARY KEY (story_id, viewer_id),
  KEY ix_story_views_viewer (viewer_id),
  CONSTRAINT fk_story_views_story FOREIGN KEY (story_id) REFERENCES stories (id) ON DELETE CASCADE,
  CONSTRAINT fk_story_views_viewer FOREIGN KEY (viewer_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Durable outbox: written in the same transaction as the change that causes the mail.
CREATE TABLE mail_outbox (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  recipient       VARCHAR(255) NOT NULL,
  subject         VARCHAR(255) NOT NULL,
  text_body       MEDIUMTEXT   NOT NULL,
  html_body       MEDIUMTEXT   NOT NULL,
  attempts        INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3)  NOT NULL,
  sent_at         DATETIME(3)  NULL,
  last_error      VARCHAR(500) NULL,
  created_at      DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_mail_outbox_due (sent_at, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

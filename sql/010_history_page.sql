-- Each message carries a summary of its reactions, so that a page of history reads them with
-- the messages instead of in a second query: a JSON array of [emoji, count, "first,user,ids"
-- (the first 10, oldest first), first reacted at], emoji in the order they were first used;
-- NULL when there are none. message_reactions stays the truth; the summary is rewritten in
-- the same transaction as every change to it (services/reactions.py, message deletion,
-- account deletion).
--
-- has_attachments: whether the message was sent with attachments, so that a page of history
-- looks them up only when some message has any (a hint: 1 with no rows left costs one empty
-- lookup, never a wrong answer).
ALTER TABLE messages ADD COLUMN reactions_summary TEXT NULL,
  ADD COLUMN has_attachments TINYINT(1) NOT NULL DEFAULT 0;

UPDATE messages m SET m.has_attachments = 1
WHERE EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id);

UPDATE messages m
JOIN (SELECT message_seq,
             JSON_ARRAYAGG(JSON_ARRAY(emoji, n, user_ids, first_at) ORDER BY first_at, emoji) AS summary
      FROM (SELECT message_seq, emoji, COUNT(*) AS n,
                   GROUP_CONCAT(user_id ORDER BY created_at, user_id SEPARATOR ',' LIMIT 10) AS user_ids,
                   CAST(MIN(created_at) AS CHAR) AS first_at
            FROM message_reactions GROUP BY message_seq, emoji) per_emoji
      GROUP BY message_seq) s ON s.message_seq = m.seq
SET m.reactions_summary = s.summary;

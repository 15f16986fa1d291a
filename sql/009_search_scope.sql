-- Search within the user's own conversations first (issue 13). Each message carries one word
-- naming its conversation ("zc" + the id's hex digits) or group ("zg" + …), indexed with its
-- text, so that a search can require "one of my conversations or groups" inside the full-text
-- engine: the engine intersects the word's matches with the user's before any row is read,
-- instead of reading every match in the database and dropping the others' afterwards.
-- The SQL around it still checks membership: the word is a pre-filter, never the rule.
ALTER TABLE messages ADD COLUMN search_scope CHAR(34) NULL;

UPDATE messages SET search_scope = IF(group_id IS NULL, CONCAT('zc', REPLACE(conversation_id, '-', '')),
                                      CONCAT('zg', REPLACE(group_id, '-', '')));

-- FORCE rebuilds the table with the index, the path known to give a working index on MariaDB
-- 10.11: a full-text index added back in place, on a table whose FTS_DOC_ID column came from
-- an ALTER (as 004's did) and whose rows were written while it had no such index, matched
-- nothing in our tests.
ALTER TABLE messages DROP INDEX ft_messages_content,
  ADD FULLTEXT INDEX ft_messages_content (content, search_scope), FORCE;

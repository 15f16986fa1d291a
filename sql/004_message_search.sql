-- Full-text search over message text (GET /api/chat/search). The index is rebuilt from the
-- rows already stored; words shorter than the server's innodb_ft_min_token_size (3 by
-- default; the private MariaDB of bin/serve and bin/test uses 2) and InnoDB's stopwords are
-- not indexed, so they never match.
ALTER TABLE messages ADD FULLTEXT INDEX ft_messages_content (content);

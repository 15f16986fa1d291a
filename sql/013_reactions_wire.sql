-- A message's reaction summary (sql/010_history_page.sql) becomes what the API answers: a JSON
-- array of Reactions, [{"emoji", "count", "userIds" (the first 10, oldest first),
-- "reactedByMe": false}], emoji in the order they were first used; NULL when there are none.
-- A page of history then reads it as part of the row's JSON (no second decode, no
-- per-emoji splitting and re-building in Python) and only sets reactedByMe for the viewer.
-- The old form ([emoji, count, "first,user,ids", first reacted at]) kept the first use's time
-- for ordering, which the summary's order already says. message_reactions stays the truth.
UPDATE messages m
JOIN (SELECT message_seq,
             JSON_ARRAYAGG(JSON_OBJECT('emoji', emoji, 'count', n, 'userIds', JSON_QUERY(user_ids, '$'),
                                       'reactedByMe', 1 = 0)
                           ORDER BY first_at, emoji) AS summary
      FROM (SELECT message_seq, emoji, COUNT(*) AS n,
                   JSON_ARRAYAGG(user_id ORDER BY created_at, user_id LIMIT 10) AS user_ids,
                   MIN(created_at) AS first_at
            FROM message_reactions GROUP BY message_seq, emoji) per_emoji
      GROUP BY message_seq) s ON s.message_seq = m.seq
SET m.reactions_summary = s.summary;

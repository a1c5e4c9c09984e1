-- No query looks objects up by uid (owner filters read uids from rows found by cluster and name,
-- events have their own table): the index only cost every write a random-key insert.
DROP INDEX resources_uid;

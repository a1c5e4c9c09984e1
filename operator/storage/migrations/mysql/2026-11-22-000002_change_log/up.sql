-- The change log behind multi-cluster watch. Sequence numbers come from change_log.head,
-- bumped at the end of each write transaction, so sequence order is commit order (no gaps).
CREATE TABLE change_log (
    id INT NOT NULL PRIMARY KEY,
    head BIGINT NOT NULL,
    -- Changes up to and including this sequence were compacted away: older watches get 410.
    horizon BIGINT NOT NULL
);
INSERT INTO change_log (id, head, horizon) VALUES (1, 0, 0);

-- Upserts carry no object (watchers read the current row); deletions keep the last object.
CREATE TABLE changes (
    seq BIGINT NOT NULL PRIMARY KEY,
    op VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    cluster VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    api_group VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    version VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    namespace VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    changed_at BIGINT NOT NULL,
    object JSON NULL
);

-- The change log behind multi-cluster watch. Sequence numbers come from change_log.head,
-- bumped at the end of each write transaction, so sequence order is commit order (no gaps).
CREATE TABLE change_log (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head BIGINT NOT NULL,
    -- Changes up to and including this sequence were compacted away: older watches get 410.
    horizon BIGINT NOT NULL
);
INSERT INTO change_log (id, head, horizon) VALUES (1, 0, 0);

-- Upserts carry no object (watchers read the current row); deletions keep the last object.
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    op TEXT NOT NULL,
    cluster TEXT NOT NULL,
    api_group TEXT NOT NULL,
    version TEXT NOT NULL,
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    object JSONB
);

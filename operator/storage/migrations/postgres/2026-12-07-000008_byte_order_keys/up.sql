-- Names and keys compare byte by byte, as on SQLite (BINARY) and MySQL (ascii_bin) and as
-- Kubernetes orders them, whatever the database's locale: lists, orderby and continue tokens
-- agree on every backend. Changing a collation rebuilds the indexes on the column; the rows are
-- not rewritten.
ALTER TABLE resources
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN api_group TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN version TYPE VARCHAR(63) COLLATE "C",
    ALTER COLUMN resource TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN kind TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN namespace TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN name TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN uid TYPE VARCHAR(64) COLLATE "C",
    ALTER COLUMN owner_uid TYPE VARCHAR(64) COLLATE "C",
    ALTER COLUMN resource_version TYPE VARCHAR(64) COLLATE "C";
ALTER TABLE events
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN involved_uid TYPE VARCHAR(64) COLLATE "C",
    ALTER COLUMN event_uid TYPE VARCHAR(64) COLLATE "C",
    ALTER COLUMN resource_version TYPE VARCHAR(64) COLLATE "C";
ALTER TABLE changes
    ALTER COLUMN op TYPE TEXT COLLATE "C",
    ALTER COLUMN cluster TYPE TEXT COLLATE "C",
    ALTER COLUMN api_group TYPE TEXT COLLATE "C",
    ALTER COLUMN version TYPE TEXT COLLATE "C",
    ALTER COLUMN resource TYPE TEXT COLLATE "C",
    ALTER COLUMN namespace TYPE TEXT COLLATE "C",
    ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE resource_definitions
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN api_group TYPE VARCHAR(253) COLLATE "C",
    ALTER COLUMN version TYPE VARCHAR(63) COLLATE "C",
    ALTER COLUMN resource TYPE VARCHAR(253) COLLATE "C";

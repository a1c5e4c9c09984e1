-- Back to the database's collation.
ALTER TABLE resources
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN api_group TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN version TYPE VARCHAR(63) COLLATE "default",
    ALTER COLUMN resource TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN kind TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN namespace TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN name TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN uid TYPE VARCHAR(64) COLLATE "default",
    ALTER COLUMN owner_uid TYPE VARCHAR(64) COLLATE "default",
    ALTER COLUMN resource_version TYPE VARCHAR(64) COLLATE "default";
ALTER TABLE events
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN involved_uid TYPE VARCHAR(64) COLLATE "default",
    ALTER COLUMN event_uid TYPE VARCHAR(64) COLLATE "default",
    ALTER COLUMN resource_version TYPE VARCHAR(64) COLLATE "default";
ALTER TABLE changes
    ALTER COLUMN op TYPE TEXT COLLATE "default",
    ALTER COLUMN cluster TYPE TEXT COLLATE "default",
    ALTER COLUMN api_group TYPE TEXT COLLATE "default",
    ALTER COLUMN version TYPE TEXT COLLATE "default",
    ALTER COLUMN resource TYPE TEXT COLLATE "default",
    ALTER COLUMN namespace TYPE TEXT COLLATE "default",
    ALTER COLUMN name TYPE TEXT COLLATE "default";
ALTER TABLE resource_definitions
    ALTER COLUMN cluster TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN api_group TYPE VARCHAR(253) COLLATE "default",
    ALTER COLUMN version TYPE VARCHAR(63) COLLATE "default",
    ALTER COLUMN resource TYPE VARCHAR(253) COLLATE "default";

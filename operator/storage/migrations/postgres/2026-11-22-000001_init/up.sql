-- One row per synced object. Times are Unix milliseconds (portable, sortable).
CREATE TABLE resources (
    id BIGSERIAL PRIMARY KEY,
    cluster VARCHAR(253) NOT NULL,
    api_group VARCHAR(253) NOT NULL,
    version VARCHAR(63) NOT NULL,
    resource VARCHAR(253) NOT NULL,
    kind VARCHAR(253) NOT NULL,
    namespace VARCHAR(253) NOT NULL,
    name VARCHAR(253) NOT NULL,
    uid VARCHAR(64) NOT NULL,
    owner_uid VARCHAR(64) NOT NULL,
    resource_version VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    synced_at BIGINT NOT NULL,
    deleted_at BIGINT,
    object JSONB NOT NULL
);
CREATE UNIQUE INDEX resources_key ON resources (cluster, api_group, version, resource, namespace, name);
CREATE INDEX resources_gvr_order ON resources (api_group, version, resource, cluster, namespace, name, id);
CREATE INDEX resources_namespace ON resources (api_group, version, resource, namespace, name);
CREATE INDEX resources_name ON resources (api_group, version, resource, name);
CREATE INDEX resources_owner ON resources (owner_uid);
CREATE INDEX resources_uid ON resources (uid);
-- Label selectors use containment (@>) and key existence (?) on this GIN index.
CREATE INDEX resources_labels ON resources USING GIN ((object->'metadata'->'labels'));

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    cluster VARCHAR(253) NOT NULL,
    involved_uid VARCHAR(64) NOT NULL,
    event_uid VARCHAR(64) NOT NULL,
    resource_version VARCHAR(64) NOT NULL,
    synced_at BIGINT NOT NULL,
    object JSONB NOT NULL
);
CREATE UNIQUE INDEX events_key ON events (cluster, involved_uid, event_uid);

-- One row per synced object. Times are Unix milliseconds (portable, sortable).
CREATE TABLE resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    api_group TEXT NOT NULL,
    version TEXT NOT NULL,
    resource TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    owner_uid TEXT NOT NULL,
    resource_version TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    synced_at BIGINT NOT NULL,
    deleted_at BIGINT,
    object TEXT NOT NULL
);
CREATE UNIQUE INDEX resources_key ON resources (cluster, api_group, version, resource, namespace, name);
CREATE INDEX resources_gvr_order ON resources (api_group, version, resource, cluster, namespace, name, id);
CREATE INDEX resources_namespace ON resources (api_group, version, resource, namespace, name);
CREATE INDEX resources_name ON resources (api_group, version, resource, name);
CREATE INDEX resources_owner ON resources (owner_uid);
CREATE INDEX resources_uid ON resources (uid);

-- Labels of each object, so label selectors are index lookups instead of JSON scans.
CREATE TABLE resource_labels (
    resource_id INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    label_key TEXT NOT NULL,
    label_value TEXT NOT NULL,
    PRIMARY KEY (label_key, label_value, resource_id)
);
CREATE INDEX resource_labels_resource ON resource_labels (resource_id);

-- Events attached to synced objects (eventsInvolvedResources), kept apart from resources.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    involved_uid TEXT NOT NULL,
    event_uid TEXT NOT NULL,
    resource_version TEXT NOT NULL,
    synced_at BIGINT NOT NULL,
    object TEXT NOT NULL
);
CREATE UNIQUE INDEX events_key ON events (cluster, involved_uid, event_uid);

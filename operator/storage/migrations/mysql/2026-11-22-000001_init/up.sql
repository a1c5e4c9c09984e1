-- One row per synced object. Times are Unix milliseconds (portable, sortable).
-- Key columns are ASCII: Kubernetes names are, and utf8mb4 would overflow the index key length.
CREATE TABLE resources (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cluster VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    api_group VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    version VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    namespace VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    uid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    owner_uid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource_version VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at BIGINT NOT NULL,
    synced_at BIGINT NOT NULL,
    deleted_at BIGINT NULL,
    object JSON NOT NULL,
    UNIQUE KEY resources_key (cluster, api_group, version, resource, namespace, name),
    KEY resources_gvr_order (api_group, version, resource, cluster, namespace, name, id),
    KEY resources_namespace (api_group, version, resource, namespace, name),
    KEY resources_name (api_group, version, resource, name),
    KEY resources_owner (owner_uid),
    KEY resources_uid (uid)
);

-- Labels of each object, so label selectors are index lookups instead of JSON scans.
CREATE TABLE resource_labels (
    resource_id BIGINT NOT NULL,
    label_key VARCHAR(317) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    label_value VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (label_key, label_value, resource_id),
    KEY resource_labels_resource (resource_id),
    CONSTRAINT resource_labels_fk FOREIGN KEY (resource_id) REFERENCES resources (id) ON DELETE CASCADE
);

CREATE TABLE events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cluster VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    involved_uid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    event_uid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource_version VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    synced_at BIGINT NOT NULL,
    object JSON NOT NULL,
    UNIQUE KEY events_key (cluster, involved_uid, event_uid)
);

-- How a member defines each custom resource it serves (its CRD's `spec.versions[i]`): printer
-- columns for Tables and the schema for OpenAPI. One row per cluster and resource version.
-- Key columns are ASCII, as in `resources`.
CREATE TABLE resource_definitions (
    cluster VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    api_group VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    version VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    synced_at BIGINT NOT NULL,
    definition LONGTEXT NOT NULL,
    PRIMARY KEY (cluster, api_group, version, resource),
    KEY resource_definitions_gvr (api_group, version, resource)
);

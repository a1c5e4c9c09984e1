-- How a member defines each custom resource it serves (its CRD's `spec.versions[i]`): printer
-- columns for Tables and the schema for OpenAPI. One row per cluster and resource version.
CREATE TABLE resource_definitions (
    cluster VARCHAR(253) NOT NULL,
    api_group VARCHAR(253) NOT NULL,
    version VARCHAR(63) NOT NULL,
    resource VARCHAR(253) NOT NULL,
    synced_at BIGINT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (cluster, api_group, version, resource)
);
CREATE INDEX resource_definitions_gvr ON resource_definitions (api_group, version, resource);

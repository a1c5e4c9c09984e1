-- How a member defines each custom resource it serves (its CRD's `spec.versions[i]`): printer
-- columns for Tables and the schema for OpenAPI. One row per cluster and resource version.
CREATE TABLE resource_definitions (
    cluster TEXT NOT NULL,
    api_group TEXT NOT NULL,
    version TEXT NOT NULL,
    resource TEXT NOT NULL,
    synced_at BIGINT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (cluster, api_group, version, resource)
);
CREATE INDEX resource_definitions_gvr ON resource_definitions (api_group, version, resource);

DROP TABLE resource_definitions;

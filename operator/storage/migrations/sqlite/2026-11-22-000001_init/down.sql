DROP TABLE events; DROP TABLE resource_labels; DROP TABLE resources;

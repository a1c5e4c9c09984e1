DROP TABLE events; DROP TABLE resources;

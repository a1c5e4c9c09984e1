CREATE INDEX resources_uid ON resources (uid);

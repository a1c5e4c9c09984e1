-- The label index's foreign key made SQLite look its parent row up for every label row written
-- (a sixteenth of the writer's work in an initial sync of pods). A trigger removes an object's
-- labels with it instead, through the same resource_id index the cascade used.
CREATE TABLE resource_labels_new (
    label_id INTEGER NOT NULL,
    resource_id INTEGER NOT NULL,
    PRIMARY KEY (label_id, resource_id)
) WITHOUT ROWID;
INSERT INTO resource_labels_new (label_id, resource_id) SELECT label_id, resource_id FROM resource_labels;
DROP TABLE resource_labels;
ALTER TABLE resource_labels_new RENAME TO resource_labels;
CREATE INDEX resource_labels_resource ON resource_labels (resource_id);
CREATE TRIGGER resources_delete_labels AFTER DELETE ON resources
BEGIN
    DELETE FROM resource_labels WHERE resource_id = OLD.id;
END;

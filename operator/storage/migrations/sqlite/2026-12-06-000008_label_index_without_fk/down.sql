DROP TRIGGER resources_delete_labels;
CREATE TABLE resource_labels_old (
    label_id INTEGER NOT NULL,
    resource_id INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (label_id, resource_id)
) WITHOUT ROWID;
INSERT INTO resource_labels_old (label_id, resource_id) SELECT label_id, resource_id FROM resource_labels;
DROP TABLE resource_labels;
ALTER TABLE resource_labels_old RENAME TO resource_labels;
CREATE INDEX resource_labels_resource ON resource_labels (resource_id);

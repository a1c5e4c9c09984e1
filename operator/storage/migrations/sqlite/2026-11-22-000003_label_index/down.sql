CREATE TABLE resource_labels_old (
    resource_id INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    label_key TEXT NOT NULL,
    label_value TEXT NOT NULL,
    PRIMARY KEY (label_key, label_value, resource_id)
);
INSERT INTO resource_labels_old (resource_id, label_key, label_value)
    SELECT l.resource_id, p.label_key, p.label_value FROM resource_labels l JOIN label_pairs p ON p.id = l.label_id;
DROP TABLE resource_labels;
DROP TABLE label_pairs;
ALTER TABLE resource_labels_old RENAME TO resource_labels;
CREATE INDEX resource_labels_resource ON resource_labels (resource_id);

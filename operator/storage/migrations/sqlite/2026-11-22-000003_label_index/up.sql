-- Label pairs are interned: resource_labels holds two integers per label instead of the key and
-- value text, so the label index costs a fraction to write and to store.
CREATE TABLE label_pairs (
    id INTEGER PRIMARY KEY,
    label_key TEXT NOT NULL,
    label_value TEXT NOT NULL
);
CREATE UNIQUE INDEX label_pairs_key ON label_pairs (label_key, label_value);
INSERT INTO label_pairs (label_key, label_value)
    SELECT DISTINCT label_key, label_value FROM resource_labels ORDER BY label_key, label_value;

CREATE TABLE resource_labels_new (
    label_id INTEGER NOT NULL,
    resource_id INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (label_id, resource_id)
) WITHOUT ROWID;
INSERT INTO resource_labels_new (label_id, resource_id)
    SELECT p.id, l.resource_id FROM resource_labels l
    JOIN label_pairs p ON p.label_key = l.label_key AND p.label_value = l.label_value;
DROP TABLE resource_labels;
ALTER TABLE resource_labels_new RENAME TO resource_labels;
CREATE INDEX resource_labels_resource ON resource_labels (resource_id);

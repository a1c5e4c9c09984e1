-- Label pairs are interned: resource_labels holds two integers per label instead of the key and
-- value text, so the label index costs a fraction to write and to store.
CREATE TABLE label_pairs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    label_key VARCHAR(317) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    label_value VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    UNIQUE KEY label_pairs_key (label_key, label_value)
);
INSERT INTO label_pairs (label_key, label_value)
    SELECT DISTINCT label_key, label_value FROM resource_labels ORDER BY label_key, label_value;

CREATE TABLE resource_labels_new (
    label_id BIGINT NOT NULL,
    resource_id BIGINT NOT NULL,
    PRIMARY KEY (label_id, resource_id),
    KEY resource_labels_by_resource (resource_id),
    CONSTRAINT resource_labels_resource_fk FOREIGN KEY (resource_id) REFERENCES resources (id) ON DELETE CASCADE
);
INSERT INTO resource_labels_new (label_id, resource_id)
    SELECT p.id, l.resource_id FROM resource_labels l
    JOIN label_pairs p ON p.label_key = l.label_key AND p.label_value = l.label_value;
DROP TABLE resource_labels;
RENAME TABLE resource_labels_new TO resource_labels;

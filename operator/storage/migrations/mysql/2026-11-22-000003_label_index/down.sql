CREATE TABLE resource_labels_old (
    resource_id BIGINT NOT NULL,
    label_key VARCHAR(317) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    label_value VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (label_key, label_value, resource_id),
    KEY resource_labels_resource (resource_id),
    CONSTRAINT resource_labels_fk FOREIGN KEY (resource_id) REFERENCES resources (id) ON DELETE CASCADE
);
INSERT INTO resource_labels_old (resource_id, label_key, label_value)
    SELECT l.resource_id, p.label_key, p.label_value FROM resource_labels l JOIN label_pairs p ON p.id = l.label_id;
DROP TABLE resource_labels;
DROP TABLE label_pairs;
RENAME TABLE resource_labels_old TO resource_labels;

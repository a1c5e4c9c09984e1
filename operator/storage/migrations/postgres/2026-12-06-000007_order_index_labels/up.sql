-- A page of a label many objects carry walks this index in the page's order and checks each
-- entry's labels; with the labels in the index that walk reads no table rows (an index-only scan
-- where the visibility map is set).
CREATE INDEX resources_gvr_order_labels ON resources (api_group, version, resource, cluster, namespace, name, id)
    INCLUDE (labels);
DROP INDEX resources_gvr_order;
ALTER INDEX resources_gvr_order_labels RENAME TO resources_gvr_order;

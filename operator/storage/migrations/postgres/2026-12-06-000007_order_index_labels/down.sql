CREATE INDEX resources_gvr_order_plain ON resources (api_group, version, resource, cluster, namespace, name, id);
DROP INDEX resources_gvr_order;
ALTER INDEX resources_gvr_order_plain RENAME TO resources_gvr_order;

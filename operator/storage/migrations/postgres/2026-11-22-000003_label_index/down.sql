ALTER TABLE events ALTER COLUMN object TYPE JSONB USING object::jsonb;
ALTER TABLE changes ALTER COLUMN object TYPE JSONB USING object::jsonb;
DROP INDEX resources_labels;
ALTER TABLE resources ALTER COLUMN object TYPE JSONB USING object::jsonb;
ALTER TABLE resources DROP COLUMN labels;
CREATE INDEX resources_labels ON resources USING GIN ((object->'metadata'->'labels'));

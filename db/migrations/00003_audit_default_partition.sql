-- A safety net for the audit log: rows outside every monthly partition
-- (the maintenance job fell behind, or a clock is off) land here instead of
-- failing the change they record. Creating a month's partition later fails
-- while this partition holds rows of that month; the maintenance job moves
-- them first.

-- +goose Up
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- +goose Down
DROP TABLE audit_events_default;

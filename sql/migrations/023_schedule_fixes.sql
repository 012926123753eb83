-- Staff schedule fixes after the review of issue 11 (docs/SCHEDULES.md).
-- A decision on time off (approve, deny, withdraw) keeps its own reason,
-- apart from the person's reason for asking: `timeoff deny ID --reason`.
ALTER TABLE time_off ADD COLUMN decision_reason text NOT NULL DEFAULT ''
    CHECK (length(decision_reason) <= 200);

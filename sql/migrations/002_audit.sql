-- 002: the audit trail of changes to patron and catalog records.
--
-- Every create, edit, block, merge of a patron, bib or item writes one row in
-- the same transaction as the change: who (staff), where (workstation and its
-- branch), when, and the before/after value of each changed field.

CREATE TABLE audit_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    staff_id bigint REFERENCES staff,
    workstation_id bigint REFERENCES workstation,
    branch_id integer REFERENCES branch,
    entity text NOT NULL CHECK (entity IN ('patron', 'bib', 'item')),
    entity_id bigint NOT NULL,
    action text NOT NULL CHECK (length(action) BETWEEN 1 AND 40),
    -- {"field": {"before": ..., "after": ...}, ...}
    changes jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_entity ON audit_event (entity, entity_id, at);

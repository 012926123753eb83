-- The audit trail of record changes (audit_event): audit_write records one
-- change with the fields it changed (audit_diff). Called by the catalog and
-- patron rules, never by the daemon directly.

-- The fields that differ between two versions of a record, as
-- {"field": {"before": old, "after": new}}. Keys in `ignore` are skipped
-- (bookkeeping such as version and updated_at).
CREATE OR REPLACE FUNCTION audit_diff(p_before jsonb, p_after jsonb,
                           p_ignore text[] DEFAULT '{version,updated_at,created_at}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('before', p_before -> k,
                                                            'after', p_after -> k)), '{}')
    FROM (SELECT jsonb_object_keys(coalesce(p_before, '{}') || coalesce(p_after, '{}')) AS k) keys
    WHERE NOT k = ANY (p_ignore)
      AND (p_before -> k) IS DISTINCT FROM (p_after -> k)
$$;

-- Record one audited change made from a workstation.
CREATE OR REPLACE FUNCTION audit_write(p_staff bigint, p_workstation bigint, p_entity text,
                            p_entity_id bigint, p_action text, p_changes jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_event (staff_id, workstation_id, branch_id, entity, entity_id, action,
                             changes)
    SELECT p_staff, p_workstation, (SELECT w.branch_id FROM workstation w WHERE w.id = p_workstation),
           p_entity, p_entity_id, p_action, p_changes
$$;

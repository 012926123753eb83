-- 016: a hold is dated closed when it closes, not when its transaction began.
--
-- Issue 8, item 25's class: times taken at transaction start (now()) come
-- before any lock wait. A cancel that waited while another desk sent the
-- copy on its way for that hold was dated before the transit
-- (hold_invariants: "hold transit without a hold"). Every path that
-- cancels or expires a hold (cancel, expiry, merge, release) passes through
-- this trigger, which runs once the row is locked.

CREATE FUNCTION hold_closed_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A fill dates itself after its locks (closed_at = filled_at).
    IF NEW.status IN ('cancelled', 'expired')
       AND OLD.status NOT IN ('filled', 'cancelled', 'expired') THEN
        NEW.closed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER hold_closed_at BEFORE UPDATE OF status ON hold
    FOR EACH ROW EXECUTE FUNCTION hold_closed_at();

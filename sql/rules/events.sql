-- Desk events: desk_event NOTIFYs carrel_events; carreld LISTENs and pushes
-- an Event frame to the desks of the branch (server/events.c). Called by the
-- hold and circulation rules.

-- Tell the desks of a branch (carreld LISTENs on carrel_events and pushes
-- an Event frame to each subscribed desk). Delivered only if the
-- transaction commits. Payload: branch code, kind, barcode, bib id, text,
-- separated by tabs.
CREATE OR REPLACE FUNCTION desk_event(p_branch integer, p_kind text, p_item bigint, p_bib bigint,
                           p_text text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('carrel_events',
        concat_ws(E'\t', (SELECT code FROM branch WHERE id = p_branch), p_kind,
                  coalesce((SELECT barcode FROM item WHERE id = p_item), ''),
                  coalesce(p_bib::text, ''), replace(replace(p_text, E'\t', ' '), E'\n', ' ')))
$$;

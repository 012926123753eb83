-- Desk events: desk_event NOTIFYs carrel_events; carreld LISTENs and pushes
-- an Event frame to the desks of the branch (server/events.c). Called by the
-- hold and circulation rules; desk_event_to by the ticket rules.

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

-- An event for named staff: the payload of desk_event (the item and bib
-- fields empty) and two more fields, the ticket id and the usernames
-- (comma-separated, at most 100; the text at most 1,000 characters, so the
-- payload stays under NOTIFY's 8,000 bytes). carreld sends it to the subscribed
-- connections of those users and to every "all branches" subscriber (the
-- coordinators); with no usernames, to the branch's desks as desk_event.
-- p_branch NULL (a system-wide queue) leaves the branch code empty.
CREATE OR REPLACE FUNCTION desk_event_to(p_branch integer, p_kind text, p_ticket bigint,
                                         p_usernames text[], p_text text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('carrel_events',
        concat_ws(E'\t', coalesce((SELECT code FROM branch WHERE id = p_branch), ''), p_kind,
                  '', '', left(translate(coalesce(p_text, ''), E'\t\n\r', '   '), 1000),
                  coalesce(p_ticket::text, ''),
                  coalesce(array_to_string((p_usernames)[1:100], ','), '')))
$$;

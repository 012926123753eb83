-- Displays: copies on a theme at a place in a branch for a while (issue 13).
-- Saving and listing displays, scanning copies on and off, what a copy's
-- location says while it is on one (item_display_text: item rows of
-- server/catalog.c, catalog_search), and the lift report (display_report).
-- Called by server/displays.c (requests 335-339); the checkin route
-- "display" is in transits.sql (circ_checkin_route, through
-- display_checkin_text). docs/DISPLAYS.md.
--
-- A display is planned before starts_on, running from starts_on to ends_on
-- (library local days, inclusive) and ended after ends_on, or from the
-- moment staff end it early (ended_at). Copies: display_item rows, open
-- (removed_at NULL) while the copy is on it. No patron identity anywhere.

-- ---------------------------------------------------------------- helpers

-- planned | running | ended, on the library's day p_today.
CREATE OR REPLACE FUNCTION display_status(d display, p_today date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN d.ended_at IS NOT NULL OR d.ends_on < p_today THEN 'ended'
                WHEN d.starts_on > p_today THEN 'planned'
                ELSE 'running' END
$$;

-- "on display: THEME (place)" while copy p_item is on a display running
-- today; NULL otherwise. One probe of display_item_open (nearly every copy
-- has no open row, and the display row is read only for one that has):
-- item rows (G) and search results (D) call it per row.
CREATE OR REPLACE FUNCTION item_display_text(p_item bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'on display: ' || d.theme || ' (' || d.place || ')'
    FROM display_item di
    JOIN display d ON d.id = di.display_id
    WHERE di.item_id = p_item AND di.removed_at IS NULL
      AND d.ended_at IS NULL AND d.starts_on <= library_today() AND d.ends_on >= library_today()
    ORDER BY d.starts_on DESC, d.id DESC
    LIMIT 1
$$;

-- At checkin: "THEME (place)" of the display running today at p_branch
-- that copy p_item is on; NULL otherwise (the common case: one probe of
-- display_item_open that finds nothing). A display at another branch does
-- not count: the copy goes home first.
CREATE OR REPLACE FUNCTION display_checkin_text(p_item bigint, p_branch integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT d.theme || ' (' || d.place || ')'
    FROM display_item di
    JOIN display d ON d.id = di.display_id
    WHERE di.item_id = p_item AND di.removed_at IS NULL AND d.branch_id = p_branch
      AND d.ended_at IS NULL AND d.starts_on <= library_today() AND d.ends_on >= library_today()
    ORDER BY d.starts_on DESC, d.id DESC
    LIMIT 1
$$;

-- 027: displays: copies put on a theme at a place in a branch for a while,
-- scanned on and off (display_item), and the checkin route "display" (a
-- copy checked in at the display's branch while it runs goes back on it).
-- The rules are in sql/rules/displays.sql (circ_checkin_route in
-- transits.sql for the route). docs/DISPLAYS.md.
--
-- Invariants held by the database:
--   * a display ends on or after the day it starts;
--   * a copy is on a display at most once at a time (one open row per
--     display and copy); the rules keep a copy off two displays whose days
--     overlap;
--   * a row is closed (removed_at) at or after it was opened.

CREATE TABLE display (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    place text NOT NULL CHECK (length(place) BETWEEN 1 AND 100),
    theme text NOT NULL CHECK (length(theme) BETWEEN 1 AND 100),
    curator_id bigint NOT NULL REFERENCES staff,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    -- set when staff end it early (DisplaySave.end_now): ended from then on,
    -- even on ends_on itself
    ended_at timestamptz,
    version integer NOT NULL DEFAULT 1,
    created_by bigint REFERENCES staff,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);
-- The branch's list (running and planned first) and the control group's
-- "on no display during these days".
CREATE INDEX display_branch_ends ON display (branch_id, ends_on);

CREATE TABLE display_item (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    display_id bigint NOT NULL REFERENCES display,
    item_id bigint NOT NULL REFERENCES item,
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by bigint REFERENCES staff,
    removed_at timestamptz,
    removed_by bigint REFERENCES staff,
    CHECK (removed_at IS NULL OR removed_at >= added_at)
);
-- The one probe of item_display_text and of checkin: the copy's open rows
-- (none for nearly every copy).
CREATE INDEX display_item_open ON display_item (item_id) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX display_item_once ON display_item (display_id, item_id)
    WHERE removed_at IS NULL;
-- A display's copies, present and past (DisplayShow, the report).
CREATE INDEX display_item_display ON display_item (display_id, added_at);

-- The checkin's answer names the display the copy goes back on
-- ("THEME (place)"), route "display".
ALTER TYPE checkin_result ADD ATTRIBUTE display text;

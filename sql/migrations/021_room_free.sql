-- The free-slot grid kept, not computed per request (docs/ROOMS.md, "Free
-- time"): one row per room and local day from today to the longest
-- days_ahead of any category, as room_free answers for that day without
-- cutting off what is already past (the reader cuts today's rows at now).
-- The writers keep it in the same transaction (rooms.sql triggers on
-- room_block, room, room_part, room_category, branch_hours, branch_closed);
-- rooms_tick fills it and moves it once a day. Days outside the span, or all
-- of them when the span's time zone is not the library's any more, are
-- computed on the fly by room_free_calc, so an answer is always complete.
CREATE TABLE room_day_free (
    room_id bigint NOT NULL REFERENCES room ON DELETE CASCADE,
    day date NOT NULL,
    opens text,                       -- 'HH:MM', NULL when closed
    closes text,
    closed boolean NOT NULL,
    free text NOT NULL,               -- the periods 'HH:MM-HH:MM' as room_free returns them,
                                      -- joined by ';' ('' for none), as room_free_grid sends them
    free_from integer[] NOT NULL,     -- each period's start and end in minutes from local
    free_to integer[] NOT NULL,       -- midnight (what today's cut at now works on)
    PRIMARY KEY (room_id, day)
);

-- The days room_day_free holds for every room (all rooms, active or not),
-- and the time zone they were computed in; tz NULL: none yet (the first
-- rooms_tick fills them). Always exactly one row (rooms.sql: writers hold
-- advisory lock (21, 0) shared while they change room_day_free, rooms_tick
-- exclusively to move the span).
CREATE TABLE room_free_span (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    first_day date NOT NULL,
    last_day date NOT NULL,
    tz text
);
INSERT INTO room_free_span (first_day, last_day, tz) VALUES (current_date, current_date, NULL);

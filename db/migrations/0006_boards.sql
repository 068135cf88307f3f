-- Wall-display boards (issue 5). AUTOINCREMENT so that a deleted board's id
-- is never given to a new board: a display token's scope "board:<id>" must
-- not come to grant a board it was not made for.
CREATE TABLE boards (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    layout     TEXT NOT NULL CHECK (layout IN ('tiles', 'line', 'pareto')),
    line_ids   TEXT NOT NULL DEFAULT '', -- comma-separated line asset ids, ascending; '' = all lines
    rotate_s   INTEGER NOT NULL DEFAULT 0 CHECK (rotate_s BETWEEN 0 AND 3600),
    next_id    INTEGER REFERENCES boards(id) ON DELETE SET NULL, -- playlist: the board shown after this one
    updated_ms INTEGER NOT NULL
);

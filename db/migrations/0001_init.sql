-- The asset tree: site > area > line > machine. A machine's path is its
-- identity; absent levels are skipped, so parents may be of any higher kind.
CREATE TABLE assets (
    id              INTEGER PRIMARY KEY,
    parent_id       INTEGER REFERENCES assets(id),
    kind            TEXT NOT NULL CHECK (kind IN ('site', 'area', 'line', 'machine')),
    name            TEXT NOT NULL,
    path            TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL DEFAULT '',
    ideal_cycle_s   REAL,
    cost_per_hour   REAL,
    margin_per_unit REAL,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX assets_parent ON assets(parent_id);
CREATE INDEX assets_kind ON assets(kind);

-- One metric of one machine, discovered from its first reading. The unique
-- constraint's index also serves lookups of a machine's tags by machine_id.
CREATE TABLE tags (
    id         INTEGER PRIMARY KEY,
    machine_id INTEGER NOT NULL REFERENCES assets(id),
    metric     TEXT NOT NULL,
    topic      TEXT NOT NULL,
    text       INTEGER NOT NULL DEFAULT 0,
    unit       TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL DEFAULT '',
    hidden     INTEGER NOT NULL DEFAULT 0,
    last_ts_ms INTEGER,
    last_value REAL,
    created_ms INTEGER NOT NULL,
    UNIQUE (machine_id, metric)
);

-- The readings themselves: about 25 bytes a row. The primary key makes a
-- redelivered reading (same tag, same instant) a no-op instead of a duplicate.
CREATE TABLE readings (
    tag_id INTEGER NOT NULL,
    ts_ms  INTEGER NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (tag_id, ts_ms)
) WITHOUT ROWID;

-- Text readings (states such as "running") are stored as the id of their word.
CREATE TABLE words (
    id   INTEGER PRIMARY KEY,
    word TEXT NOT NULL UNIQUE
);

-- Bounded dead letters: the writer keeps only the newest rows.
CREATE TABLE rejects (
    id      INTEGER PRIMARY KEY,
    ts_ms   INTEGER NOT NULL,
    topic   TEXT NOT NULL,
    reason  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    payload BLOB
);

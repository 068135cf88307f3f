-- Machine states, downtime with reasons, shifts and settings (issue 3).

-- A machine's state rule (JSON of plant.Rule, '' = none) derives its state
-- from counters or speed when it publishes no state metric.
ALTER TABLE assets ADD COLUMN state_rule TEXT NOT NULL DEFAULT '';

-- The machine's states over time; at most one open span per machine.
CREATE TABLE state_spans (
    id         INTEGER PRIMARY KEY,
    machine_id INTEGER NOT NULL REFERENCES assets(id),
    state      TEXT NOT NULL,
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER,
    UNIQUE (machine_id, start_ms)
);
CREATE INDEX state_spans_open ON state_spans(machine_id) WHERE end_ms IS NULL;

-- The reason tree: categories (parent_id NULL) and the reasons under them.
CREATE TABLE reasons (
    id        INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES reasons(id),
    name      TEXT NOT NULL,
    planned   INTEGER NOT NULL DEFAULT 0,
    sort      INTEGER NOT NULL DEFAULT 0,
    hidden    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reasons_parent ON reasons(parent_id);

-- Downtime events: one per span of a stop state, split in two by operators.
CREATE TABLE stops (
    id          INTEGER PRIMARY KEY,
    machine_id  INTEGER NOT NULL REFERENCES assets(id),
    state       TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER,
    reason_id   INTEGER REFERENCES reasons(id),
    comment     TEXT NOT NULL DEFAULT '',
    coded_by    TEXT NOT NULL DEFAULT '',
    coded_at_ms INTEGER
);
CREATE INDEX stops_machine_start ON stops(machine_id, start_ms);
CREATE INDEX stops_start ON stops(start_ms);
CREATE INDEX stops_open ON stops(machine_id) WHERE end_ms IS NULL;

-- Who coded what and when, recodes and splits included.
CREATE TABLE codings (
    id        INTEGER PRIMARY KEY,
    stop_id   INTEGER NOT NULL REFERENCES stops(id),
    reason_id INTEGER REFERENCES reasons(id),
    comment   TEXT NOT NULL DEFAULT '',
    by        TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    action    TEXT NOT NULL DEFAULT 'code'
);
CREATE INDEX codings_stop ON codings(stop_id);

-- The shift calendar: days is a bit set of the weekdays a shift starts on
-- (time.Sunday = bit 0), breaks a JSON list of {"name", "start", "end"}.
CREATE TABLE shifts (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    start_min INTEGER NOT NULL,
    end_min   INTEGER NOT NULL,
    days      INTEGER NOT NULL,
    breaks    TEXT NOT NULL DEFAULT '[]'
);

-- Days without production, "2026-12-24".
CREATE TABLE holidays (day TEXT PRIMARY KEY);

-- Plant-wide settings as text, one key a row.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Mapping rules (issue 9): how topics that the default layout does not fit
-- are read. Rules are tried in order: the config file's first (source
-- 'config', replaced at every start from the file), then the admin's
-- (source 'admin', edited in the UI), each by position. AUTOINCREMENT so a
-- deleted rule's id is never reused: the audit log names rules by id.
CREATE TABLE mapping_rules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL CHECK (source IN ('config', 'admin')),
    position     INTEGER NOT NULL,
    pattern      TEXT NOT NULL,
    value_path   TEXT NOT NULL DEFAULT '',
    ts_path      TEXT NOT NULL DEFAULT '',
    metric       TEXT NOT NULL DEFAULT '',
    unit         TEXT NOT NULL DEFAULT '',
    scale        REAL NOT NULL DEFAULT 1,
    add_offset   REAL NOT NULL DEFAULT 0, -- "offset" is an SQL keyword
    availability INTEGER NOT NULL DEFAULT 0,
    online_word  TEXT NOT NULL DEFAULT '',
    offline_word TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);
CREATE INDEX mapping_rules_order ON mapping_rules(source, position);

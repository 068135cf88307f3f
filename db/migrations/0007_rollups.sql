-- Rollups (issue 6): per tag, one row per minute and one per hour holding
-- the bucket's min, max, sum and count (avg = sum / count) and its latest
-- reading (last, at last_ts_ms). bucket_ms is the bucket's start in epoch
-- milliseconds (a multiple of 60,000 or 3,600,000). They are kept up to date
-- in the writer's transaction, so a late or out-of-order reading fixes its
-- bucket the moment it is committed.
CREATE TABLE rollups_1m (
    tag_id     INTEGER NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    sum        REAL NOT NULL,
    count      INTEGER NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) WITHOUT ROWID;

CREATE TABLE rollups_1h (
    tag_id     INTEGER NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    sum        REAL NOT NULL,
    count      INTEGER NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) WITHOUT ROWID;

-- The backfill (db/rollup_backfill.go) builds the rollups of readings stored
-- before this migration, one small step at a time through the writer, and
-- keeps its place here so a restart resumes where it stopped. Tags up to
-- last_tag had readings before the rollups existed; later tags have only
-- readings that were rolled up as they were written. done_ms is when it
-- finished (0: nothing to do, a database without tags; NULL: still to do).
CREATE TABLE rollup_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    next_tag  INTEGER NOT NULL, -- the tag the next step works on
    next_ms   INTEGER NOT NULL, -- within it, the first hour not yet done
    last_tag  INTEGER NOT NULL,
    readings  INTEGER NOT NULL DEFAULT 0, -- readings rolled up so far
    started_ms INTEGER,
    done_ms   INTEGER
);
INSERT INTO rollup_backfill(id, next_tag, next_ms, last_tag, done_ms)
SELECT 1, COALESCE(MIN(id), 0), -9223372036854775808, COALESCE(MAX(id), 0),
       CASE WHEN COUNT(*) = 0 THEN 0 END
FROM tags;

-- Row counts per resolution, kept up to date in the same transactions that
-- insert and delete rows (the writer, the backfill, retention), so the
-- storage page and /metrics never count a large table.
CREATE TABLE storage_counts (
    resolution TEXT PRIMARY KEY,
    rows       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO storage_counts(resolution, rows) VALUES ('raw', 0), ('1m', 0), ('1h', 0);

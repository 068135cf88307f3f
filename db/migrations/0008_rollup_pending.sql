-- Rollup buckets held in the writer's memory (issue 8): while the writer is
-- busy it keeps the rollups of committed readings in memory and writes them
-- at most a second later, one statement per bucket instead of one per bucket
-- per transaction. Each minute bucket held so is listed here in the same
-- transaction as its readings, and the list is emptied when the buckets are
-- written. After a crash the writer rebuilds the listed minutes from the raw
-- readings, and their hours from the minutes, before it takes new readings.
CREATE TABLE rollup_pending (
    tag_id    INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) WITHOUT ROWID;

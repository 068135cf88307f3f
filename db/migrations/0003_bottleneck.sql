-- A line's bottleneck machine (issue 3): where one is set, the line's OEE and
-- its parts are that machine's instead of the sum of its machines.
ALTER TABLE assets ADD COLUMN bottleneck INTEGER NOT NULL DEFAULT 0;

-- At most one bottleneck per line (a machine's parent is its line); the store
-- clears the others in the same transaction, this makes sure of it.
CREATE UNIQUE INDEX assets_bottleneck ON assets(parent_id) WHERE bottleneck = 1 AND kind = 'machine';

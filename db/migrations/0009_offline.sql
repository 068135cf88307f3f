-- A machine's device can say it left (issue 9): a Sparkplug death
-- certificate, an MQTT last will, an availability topic saying "offline".
-- offline_ms is when it did, 0 while it has not or has come back since; the
-- machine then shows offline and its values stale, whatever the heartbeat.
ALTER TABLE assets ADD COLUMN offline_ms INTEGER NOT NULL DEFAULT 0;

-- Devices that may connect to the embedded MQTT broker (issue 4): a username
-- and a bcrypt hash of its password, and the topic prefix it may publish and
-- subscribe under. Usernames are compared as MQTT sends them (case-sensitive).
CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    topic_prefix  TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL DEFAULT 0
);

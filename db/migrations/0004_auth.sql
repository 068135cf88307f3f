-- Users, sessions, tokens, the first-admin setup link and the audit log (issue 4).
-- Secrets (session ids, tokens, setup links) are stored only as their SHA-256;
-- passwords only as bcrypt hashes.

-- name_key is the name folded to lower case: names are unique and looked up
-- case-insensitively (COLLATE NOCASE would fold ASCII only).
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    last_login_ms   INTEGER NOT NULL DEFAULT 0,
    -- failed logins in a row, and until when the user is locked out after too many
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY, -- sha256 of the cookie's secret
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_last_seen ON sessions(last_seen_ms);

-- API tokens (scope read or ingest) and display tokens (scope board:<id> or all).
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('api', 'display')),
    scope        TEXT NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL, -- the secret's first characters, to recognise it in lists
    hash         BLOB NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER NOT NULL DEFAULT 0,
    revoked_ms   INTEGER NOT NULL DEFAULT 0
);

-- At most one link, valid only while there are no users; using it deletes it.
CREATE TABLE setup_links (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    hash       BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- Who changed what, and when. Rows are only ever appended; id gives the order.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    ts_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);

-- Registrations (the location service) and node-wide settings.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE location (
    aor         TEXT    NOT NULL,
    contact     TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    call_id     TEXT    NOT NULL,
    cseq        BIGINT  NOT NULL,
    q           BIGINT,
    instance    TEXT,
    reg_id      BIGINT,
    path        TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    user_agent  TEXT    NOT NULL,
    node        TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX location_expires_at ON location (expires_at);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

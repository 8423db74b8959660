-- The nodes sharing this database: each running node keeps its row fresh with a
-- heartbeat, so the others (and `softswitch cluster`) can tell up, draining,
-- stopped and lost nodes apart. Times are Unix milliseconds.
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    sip TEXT NOT NULL,
    admin TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    state TEXT NOT NULL
);

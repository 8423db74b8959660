-- The dialplan's AstDB (DB(), DB_DELETE()) and one call detail record per call.
CREATE TABLE astdb (
    family  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (family, key)
);

CREATE TABLE cdr (
    uniqueid     TEXT    PRIMARY KEY,
    node         TEXT    NOT NULL,
    start_at     BIGINT  NOT NULL,   -- unix milliseconds
    answer_at    BIGINT,
    end_at       BIGINT  NOT NULL,
    duration     BIGINT  NOT NULL,   -- seconds, start to end
    billsec      BIGINT  NOT NULL,   -- seconds, answer to end
    src          TEXT    NOT NULL,
    dst          TEXT    NOT NULL,
    dcontext     TEXT    NOT NULL,
    clid         TEXT    NOT NULL,
    dstchannel   TEXT    NOT NULL,
    lastapp      TEXT    NOT NULL,
    disposition  TEXT    NOT NULL,   -- ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION
    hangup_cause BIGINT  NOT NULL,
    end_reason   TEXT    NOT NULL,   -- caller_hangup, callee_hangup, caller_cancel, dialplan, media_timeout, no_ack
    sip_status   BIGINT,
    media        TEXT    NOT NULL    -- JSON: per-leg packets, bytes, loss, jitter
);
CREATE INDEX cdr_start_at ON cdr (start_at);

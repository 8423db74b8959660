-- Voicemail messages, one row each: what a message's .txt holds, its folder and
-- number, and where its sound file is (relative to the spool directory). Every node
-- reads mailbox listings and message counts from here, so a message left through
-- one node is heard, moved or deleted through any other. The sound files stay in
-- the spool, a directory every node of a cluster mounts.
CREATE TABLE voicemail (
    msg_id TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL,
    mailbox_context TEXT NOT NULL,
    folder TEXT NOT NULL,
    msgnum BIGINT NOT NULL,
    recording TEXT NOT NULL,
    callerid TEXT NOT NULL,
    origtime BIGINT NOT NULL,
    duration BIGINT NOT NULL,
    exten TEXT NOT NULL,
    context TEXT NOT NULL,
    node TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX voicemail_mailbox ON voicemail (mailbox_context, mailbox);

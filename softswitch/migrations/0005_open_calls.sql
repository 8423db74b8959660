-- Calls in progress, one row each from the call's start to its CDR (which removes
-- it in the same commit). When a node dies, a surviving node turns the rows it
-- left into CDRs with end_reason 'node_lost'; a node restarting under the same
-- name does so for its own. Times are Unix milliseconds.
CREATE TABLE open_calls (
    uniqueid TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    answer_at BIGINT,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    dcontext TEXT NOT NULL,
    clid TEXT NOT NULL
);
CREATE INDEX open_calls_node ON open_calls (node);

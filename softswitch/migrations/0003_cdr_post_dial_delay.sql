-- Post-dial delay: milliseconds from the caller's INVITE to the first sign of
-- ringing (a callee's 180/183 or the switch's own ringback); NULL when the call
-- never rang (a dialplan that answered itself, an unreachable number).
ALTER TABLE cdr ADD COLUMN pdd_ms BIGINT;

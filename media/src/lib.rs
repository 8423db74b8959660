//! RTP relay engine, SDP rewriting and media applications.

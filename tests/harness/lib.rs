//! Helpers to start the switch, SIPp, baresip and PostgreSQL in tests.

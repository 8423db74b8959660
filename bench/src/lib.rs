//! Benchmarks live in benches/ and the SIPp load scripts in sipp/.

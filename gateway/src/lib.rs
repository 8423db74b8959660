//! Dial peers (destination-pattern, preference, hunting, load sharing) and peer health.

//! Dial peers (destination-pattern, preference, hunting, load sharing) and peer health.
//!
//! - [`pattern`] parses Cisco IOS `destination-pattern`s and ranks their matches.
//! - [`select`] turns a called number into the ordered list of peers to try
//!   (the hunt list), with the reasons `softswitch peers --explain` shows.
//! - [`ios`] turns Cisco IOS dial peers into `[[dial_peer]]` TOML, with a
//!   `file:line:col` diagnostic for everything it changes, skips or ignores.
//! - [`digits`] rewrites the called number on the way out (strip, forward, prefix).
//! - [`health`] keeps each peer's state (up, suspect, down, recovering,
//!   draining, disabled) from its calls and OPTIONS probes.

pub mod digits;
pub mod health;
pub mod ios;
pub mod pattern;
pub mod select;

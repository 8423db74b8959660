//! Dial peers (destination-pattern, preference, hunting, load sharing) and peer health.
//!
//! - [`pattern`] parses Cisco IOS `destination-pattern`s and ranks their matches.
//! - [`select`] turns a called number into the ordered list of peers to try
//!   (the hunt list), with the reasons `softswitch peers --explain` shows.

pub mod pattern;
pub mod select;

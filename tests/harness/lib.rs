//! Helpers for the end-to-end tests: start the real `softswitch` release binary on its
//! own loopback address, and drive it with SIPp, baresip, raw UDP and a PostgreSQL
//! server started for the test. Every process started here is stopped by PID when its
//! guard drops; every wait is bounded.

pub mod audio;
pub mod balancer;
pub mod baresip;
pub mod net;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod sipp;
pub mod switch;

pub use balancer::Balancer;
pub use baresip::{Baresip, BaresipOptions};
pub use net::{TestNet, UdpClient};
pub use postgres::Postgres;
pub use sipp::{RunningSipp, Sipp, SippRun};
pub use switch::{DEFAULT_DIALPLAN, Database, Switch, SwitchOptions};

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The release binary under test (`SOFTSWITCH_BIN` overrides).
pub fn binary() -> PathBuf {
    let path = std::env::var_os("SOFTSWITCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/softswitch"));
    assert!(
        path.exists(),
        "{} does not exist: build it with `cargo build --release -p softswitch` (scripts/test does)",
        path.display()
    );
    path
}

/// SIPp scenario files shipped with the tests.
pub fn scenario(name: &str) -> PathBuf {
    workspace().join("tests/sipp").join(name)
}

//! Helpers for the end-to-end tests: start the real `softswitch` release binary on its
//! own loopback address, and drive it with SIPp, baresip, raw UDP and a PostgreSQL
//! server started for the test. Every process started here is stopped by PID when its
//! guard drops; every wait is bounded.

pub mod audio;
pub mod balancer;
pub mod baresip;
pub mod browser;
pub mod http;
pub mod net;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod sipp;
pub mod switch;
pub mod tcp_phone;

pub use balancer::Balancer;
pub use baresip::{Baresip, BaresipOptions};
pub use net::{TestNet, UdpClient};
pub use postgres::Postgres;
pub use sipp::{RunningSipp, Sipp, SippRun};
pub use switch::{DEFAULT_DIALPLAN, Database, Switch, SwitchOptions};
pub use tcp_phone::TcpPhone;

use std::path::PathBuf;

/// `scenario` (one that streams `[audio]`, such as `call_caller.xml`) written into
/// `dir` with a second of non-silent µ-law to stream; its path. SIPp expands no
/// keywords inside `<exec>`, so the file is written in.
pub fn scenario_with_audio(scenario_name: &str, dir: &std::path::Path) -> PathBuf {
    let audio = dir.join("pattern.ulaw");
    let pattern: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&audio, pattern).expect("write the audio");
    let text = std::fs::read_to_string(scenario(scenario_name))
        .expect("read the scenario")
        .replace("[audio]", audio.to_str().expect("a UTF-8 path"));
    let path = dir.join(scenario_name);
    std::fs::write(&path, text).expect("write the scenario");
    path
}

/// `call_caller_refused.xml` written into `dir` expecting the final `status`; its
/// path.
pub fn refused_scenario(status: u16, dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario("call_caller_refused.xml"))
        .expect("read the scenario")
        .replace("[final]", &status.to_string());
    let path = dir.join(format!("refused_{status}.xml"));
    std::fs::write(&path, text).expect("write the scenario");
    path
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The release binary under test (`SOFTSWITCH_BIN` overrides): in the target
/// directory cargo builds into, `CARGO_TARGET_DIR` when set.
pub fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace().join(dir))
        .unwrap_or_else(|| workspace().join("target"));
    let path = std::env::var_os("SOFTSWITCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("release/softswitch"));
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

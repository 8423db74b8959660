//! `softswitch.toml`: the node's configuration. Unknown keys are refused, and every
//! problem is reported as `file:line:col: message` so an admin can go straight to it.
//! Paths inside the file resolve relative to the file's directory.

mod listen;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

pub use listen::ListenSpec;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub node: NodeConfig,
    pub sip: SipConfig,
    #[serde(default)]
    pub registrar: RegistrarConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub dialplan: DialplanConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub rtp: RtpConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
    #[serde(default)]
    pub voicemail: VoicemailConfig,
    #[serde(default, rename = "mailbox")]
    pub mailboxes: Vec<MailboxConfig>,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default, rename = "dial_peer")]
    pub dial_peers: Vec<DialPeerConfig>,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    /// The directory of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[events]`: when an event is raised.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// A call leg whose estimated MOS ends under this raises `call_quality`
    /// (3.6: where the E-model says many users are dissatisfied); 0 never.
    #[serde(default = "default_mos_threshold")]
    pub mos_threshold: f64,
}

fn default_mos_threshold() -> f64 {
    3.6
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            mos_threshold: default_mos_threshold(),
        }
    }
}

/// `[[webhook]]`: where events are POSTed as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host:port/path`.
    pub url: Spanned<String>,
    /// The kinds it wants (see `events::KINDS`); empty or absent: all.
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    /// Sent as `Authorization: Bearer TOKEN`.
    #[serde(default)]
    pub token: Option<String>,
}

impl WebhookConfig {
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e.get_ref() == kind)
    }

    /// `(host:port, /path)` of the URL (checked when the config loads).
    pub fn target(&self) -> (&str, &str) {
        let rest = self
            .url
            .get_ref()
            .strip_prefix("http://")
            .unwrap_or(self.url.get_ref());
        match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name in logs, the database and (later) the cluster.
    #[serde(default = "default_node_name")]
    pub name: String,
    /// Where `run` writes its PID, so `softswitch reload` can signal it.
    #[serde(default = "default_pid_file")]
    pub pid_file: PathBuf,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: default_node_name(),
            pid_file: default_pid_file(),
        }
    }
}

fn default_pid_file() -> PathBuf {
    "var/softswitch.pid".into()
}

fn default_node_name() -> String {
    "node1".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<ListenSpec>,
    /// The digest realm and the domain of local AORs (`sip:1001@DOMAIN`).
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Largest message accepted on any transport, in bytes.
    #[serde(default = "default_max_message")]
    pub max_message_size: usize,
    /// Seconds a TCP connection may stay silent before it is closed.
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout: u64,
    /// Other hosts (names or addresses) that name this switch in a URI: the
    /// balancer's address or virtual IP phones register to, a DNS name.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Seconds between NAT keepalives (OPTIONS) to each phone registered from
    /// behind a NAT or through the balancer; 0 sends none.
    #[serde(default)]
    pub keepalive_interval: u64,
}

fn default_domain() -> String {
    "pbx.local".into()
}
fn default_user_agent() -> String {
    concat!("softswitch/", env!("CARGO_PKG_VERSION")).into()
}
fn default_max_message() -> usize {
    65_535
}
fn default_tcp_idle() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Shortest registration accepted; shorter ones get 423 with Min-Expires.
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longest registration granted; longer requests are cut to this.
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Used when a REGISTER names no expiry.
    #[serde(default = "default_expires")]
    pub default_expires: u32,
    /// Contacts per AOR; past it the oldest binding is replaced.
    #[serde(default = "default_max_contacts")]
    pub max_contacts: usize,
}

fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_expires() -> u32 {
    3600
}
fn default_max_contacts() -> usize {
    10
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: default_min_expires(),
            max_expires: default_max_expires(),
            default_expires: default_expires(),
            max_contacts: default_max_contacts(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Seconds a nonce is accepted; after that, a correct answer gets `stale=true`.
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime: u32,
    /// Offered digest algorithms, in order of preference (`SHA-256`, `MD5`, `SHA-512-256`).
    /// Clients that read only the first challenge get the first one, so MD5 leads by
    /// default: most phones still only do MD5.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// User-Agent prefixes of clients that give up when any challenge names an algorithm
    /// they lack (instead of ignoring it, as RFC 8760 §2.4 asks): they are offered MD5
    /// only.
    #[serde(default = "default_md5_only")]
    pub md5_only_user_agents: Vec<String>,
}

fn default_nonce_lifetime() -> u32 {
    300
}
fn default_algorithms() -> Vec<String> {
    vec!["MD5".into(), "SHA-256".into()]
}
fn default_md5_only() -> Vec<String> {
    // libre before its SHA-256 support aborts on the first unknown algorithm.
    vec![
        "baresip v0.".into(),
        "baresip v1.".into(),
        "baresip v2.".into(),
    ]
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_lifetime: default_nonce_lifetime(),
            algorithms: default_algorithms(),
            md5_only_user_agents: default_md5_only(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Failed authentications from one address within `failure_window` before its
    /// requests are throttled to one per second.
    #[serde(default = "default_throttle_after")]
    pub throttle_after: u32,
    /// Failures within the window before the address is banned.
    #[serde(default = "default_ban_after")]
    pub ban_after: u32,
    #[serde(default = "default_failure_window")]
    pub failure_window: u64,
    /// Seconds a ban lasts; every request from a banned address is dropped unanswered.
    #[serde(default = "default_ban_time")]
    pub ban_time: u64,
    /// Addresses or CIDR networks never throttled or banned (an office NAT, say).
    #[serde(default)]
    pub trusted: Vec<String>,
}

fn default_throttle_after() -> u32 {
    5
}
fn default_ban_after() -> u32 {
    10
}
fn default_failure_window() -> u64 {
    60
}
fn default_ban_time() -> u64 {
    600
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            throttle_after: default_throttle_after(),
            ban_after: default_ban_after(),
            failure_window: default_failure_window(),
            ban_time: default_ban_time(),
            trusted: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative to the config file) or `postgres://user@host:port/db`.
    #[serde(default = "default_db_url")]
    pub url: String,
    /// SQLite only: `full` makes every group commit survive power loss, `normal` only a
    /// crash of the switch.
    #[serde(default = "default_sync")]
    pub sqlite_synchronous: String,
}

fn default_db_url() -> String {
    "sqlite://var/softswitch.db".into()
}
fn default_sync() -> String {
    "full".into()
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_db_url(),
            sqlite_synchronous: default_sync(),
        }
    }
}

/// The admin API (HTTP, JSON) that the inspection commands talk to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port`, or `"off"`.
    #[serde(default = "default_admin_listen")]
    pub listen: Spanned<String>,
    /// Bearer token the API requires; mandatory when `listen` is not loopback.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_admin_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8088".into())
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            token: None,
        }
    }
}

impl AdminConfig {
    /// Where the API listens; None when it is off. Validated by [`Config::parse`].
    pub fn addr(&self) -> Option<SocketAddr> {
        let text = self.listen.get_ref().trim();
        if text.eq_ignore_ascii_case("off") {
            return None;
        }
        text.parse().ok()
    }
}

/// The media relay: where it binds and which ports it may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// Address the relay binds and announces in SDP (default: the first SIP listen address).
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// `"LOW-HIGH"`: RTP takes even ports, RTCP the odd one above.
    #[serde(default = "default_rtp_ports")]
    pub ports: Spanned<String>,
    /// Seconds without RTP from either phone before an answered call is hung up.
    #[serde(default = "default_media_timeout")]
    pub media_timeout: u64,
    /// Media threads (each carries about 1,250 G.711 calls per core); default: half
    /// the cores, at least one.
    #[serde(default)]
    pub threads: Option<usize>,
}

fn default_rtp_ports() -> Spanned<String> {
    Spanned::new(0..0, "10000-20000".into())
}
fn default_media_timeout() -> u64 {
    60
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            address: None,
            ports: default_rtp_ports(),
            media_timeout: default_media_timeout(),
            threads: None,
        }
    }
}

impl RtpConfig {
    /// The media threads to start.
    pub fn thread_count(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
        })
    }

    /// The port range, already validated by [`Config::parse`].
    pub fn port_range(&self) -> std::ops::RangeInclusive<u16> {
        parse_port_range(self.ports.get_ref()).unwrap_or(10000..=20000)
    }
}

fn parse_port_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = s.split_once('-')?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo >= 1024 && lo < hi && hi - lo >= 3).then_some(lo..=hi)
}

/// The media applications: where their sound files live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Directory of prompts, with one subdirectory per language (`sounds/en/...`).
    #[serde(default = "default_sounds")]
    pub sounds: PathBuf,
    /// Language subdirectory tried first.
    #[serde(default = "default_language")]
    pub language: String,
    /// Call-progress tone plan: `us`, `itu` (425 Hz, most of Europe) or `uk`.
    #[serde(default = "default_tones")]
    pub tones: String,
    /// Where `Record` and `MixMonitor` put files named without a directory.
    #[serde(default = "default_recordings")]
    pub recordings: PathBuf,
}

fn default_recordings() -> PathBuf {
    "recordings".into()
}

fn default_sounds() -> PathBuf {
    "sounds".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_tones() -> String {
    "us".into()
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            sounds: default_sounds(),
            language: default_language(),
            tones: default_tones(),
            recordings: default_recordings(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialplanConfig {
    #[serde(default = "default_dialplan_file")]
    pub file: PathBuf,
}

fn default_dialplan_file() -> PathBuf {
    "extensions.conf".into()
}

impl Default for DialplanConfig {
    fn default() -> Self {
        DialplanConfig {
            file: default_dialplan_file(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The SIP user and extension, e.g. `1001`.
    pub name: Spanned<String>,
    pub password: String,
    /// Dialplan context for calls from this endpoint.
    #[serde(default = "default_context")]
    pub context: String,
    /// `Name <number>` used as caller ID on its calls.
    #[serde(default)]
    pub callerid: Option<String>,
    /// Overrides `[registrar] max_contacts` for this endpoint.
    #[serde(default)]
    pub max_contacts: Option<usize>,
    /// Mailboxes (`1001@default`) whose message-waiting state this phone is told
    /// of. When absent, the mailbox of the endpoint's own name in `default`, if
    /// one is configured.
    #[serde(default)]
    pub mailboxes: Option<Vec<String>>,
}

/// `[voicemail]`: where messages live and how long they may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Messages: `spool/<context>/<mailbox>/INBOX/msg0000.wav` with a `.txt` of
    /// metadata beside it, the layout Asterisk uses.
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// Longest message, in seconds.
    #[serde(default = "default_max_voicemail")]
    pub max_message: u64,
    /// Shorter messages (a caller who hangs up at the beep) are not kept, in seconds.
    #[serde(default = "default_min_message")]
    pub min_message: f64,
    /// Silence that ends a message, in seconds.
    #[serde(default = "default_max_silence")]
    pub max_silence: u64,
    /// Messages a mailbox holds (new and old) before callers hear it is full.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Send message-waiting NOTIFYs to phones that did not SUBSCRIBE (most phones
    /// expect them unsolicited).
    #[serde(default = "default_true")]
    pub unsolicited_mwi: bool,
}

fn default_spool() -> PathBuf {
    "voicemail".into()
}
fn default_max_voicemail() -> u64 {
    180
}
fn default_min_message() -> f64 {
    1.0
}
fn default_max_silence() -> u64 {
    5
}
fn default_max_messages() -> usize {
    100
}
fn default_true() -> bool {
    true
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            spool: default_spool(),
            max_message: default_max_voicemail(),
            min_message: default_min_message(),
            max_silence: default_max_silence(),
            max_messages: default_max_messages(),
            unsolicited_mwi: true,
        }
    }
}

/// `[gateway]`: how calls are spread over equal dial peers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// `hash` (Call-ID, the default), `least_active` or `round_robin`.
    #[serde(default)]
    pub share: Option<Spanned<String>>,
    /// Seconds a peer has to say anything (a 100 Trying will do) before the
    /// next one is tried; far shorter than Timer B's 32 s.
    #[serde(default)]
    pub invite_timeout: Option<f64>,
}

impl GatewayConfig {
    pub fn invite_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.invite_timeout.unwrap_or(1.5).clamp(0.2, 32.0))
    }

    pub fn share(&self) -> gateway::select::Share {
        self.share
            .as_ref()
            .and_then(|s| gateway::select::Share::parse(s.get_ref()))
            .unwrap_or_default()
    }
}

/// One `[[dial_peer]]`: Cisco's `dial-peer voice TAG voip`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialPeerConfig {
    pub tag: Spanned<u32>,
    /// IOS wildcard syntax: `22.`, `9T`, `[2-4]...$`.
    pub destination_pattern: Spanned<String>,
    /// `ipv4:A.B.C.D[:port]`, `ipv6:[addr]:port` or `dns:host[:port]`.
    pub session_target: Spanned<String>,
    /// 0 (default) is tried first; up to 10.
    #[serde(default)]
    pub preference: Option<Spanned<u8>>,
    /// Where calls arriving from this peer run.
    #[serde(default = "default_context")]
    pub context: String,
    #[serde(default = "default_peer_transport")]
    pub transport: String,
    /// A failed call through this peer tries no further peer.
    #[serde(default)]
    pub huntstop: bool,
    /// Drop the literal digits the pattern starts with (`9T` sends no 9).
    #[serde(default)]
    pub digit_strip: bool,
    /// The last N digits, `"all"` or `"extra"` (beyond the pattern).
    #[serde(default)]
    pub forward_digits: Option<Spanned<ForwardDigitsConfig>>,
    /// Digits put in front of the number, after stripping and forwarding.
    #[serde(default)]
    pub prefix: Option<Spanned<String>>,
    /// OPTIONS probing; on by default (1 s apart, 0.4 s to answer, down after 2
    /// failures, up after 2 answers).
    #[serde(default)]
    pub options_keepalive: Option<KeepaliveConfig>,
    /// Credentials for a peer that challenges our INVITEs (401/407), answered
    /// once per call.
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub password: Option<String>,
    /// Calls from the peer's address must also pass digest, as the
    /// `[[endpoint]]` named by `username`.
    #[serde(default)]
    pub inbound_auth: bool,
    /// IOS translation-profile rules for the called number, after the digit
    /// tools: `[{ match = "^00(.*)$", replace = "+$1" }]`, first match applies.
    #[serde(default)]
    pub translate_called: Vec<TranslateRule>,
    /// The same for the calling number (From and P-Asserted-Identity).
    #[serde(default)]
    pub translate_calling: Vec<TranslateRule>,
    /// Seconds this peer has to say anything; `[gateway] invite_timeout` when unset.
    #[serde(default)]
    pub invite_timeout: Option<f64>,
}

/// `{ match = "REGEX", replace = "TEXT with $1" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateRule {
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    pub replace: String,
}

fn translation(rules: &[TranslateRule]) -> gateway::digits::Translation {
    let pairs: Vec<(String, String)> = rules
        .iter()
        .map(|r| (r.pattern.get_ref().clone(), r.replace.clone()))
        .collect();
    // Checked when the config loaded.
    gateway::digits::Translation::compile(&pairs).unwrap_or_default()
}

/// `forward_digits = 4` or `forward_digits = "all"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ForwardDigitsConfig {
    Count(u32),
    Word(String),
}

/// `options_keepalive = { interval = 1, down_interval = 1, timeout = 0.4, fall = 2, rise = 2 }`
/// (seconds; IOS's `retry` is `fall`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub interval: Option<f64>,
    pub down_interval: Option<f64>,
    pub timeout: Option<f64>,
    pub fall: Option<u32>,
    pub rise: Option<u32>,
}

impl DialPeerConfig {
    pub fn preference(&self) -> u8 {
        self.preference.as_ref().map_or(0, |p| *p.get_ref())
    }

    pub fn digit_rules(&self) -> gateway::digits::DigitRules {
        gateway::digits::DigitRules {
            digit_strip: self.digit_strip,
            forward_digits: self
                .forward_digits
                .as_ref()
                .and_then(|f| match f.get_ref() {
                    ForwardDigitsConfig::Count(n) => {
                        Some(gateway::digits::ForwardDigits::Last(*n as usize))
                    }
                    ForwardDigitsConfig::Word(w) => gateway::digits::ForwardDigits::parse(w),
                }),
            prefix: self
                .prefix
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default(),
            translate_called: translation(&self.translate_called),
        }
    }

    pub fn calling_translation(&self) -> gateway::digits::Translation {
        translation(&self.translate_calling)
    }

    pub fn keepalive(&self) -> gateway::health::Keepalive {
        let d = gateway::health::Keepalive::default();
        let Some(k) = &self.options_keepalive else {
            return d;
        };
        let secs = |v: Option<f64>, dflt: std::time::Duration| {
            v.map_or(dflt, |s| {
                std::time::Duration::from_secs_f64(s.clamp(0.05, 3600.0))
            })
        };
        gateway::health::Keepalive {
            enabled: k.enabled,
            interval: secs(k.interval, d.interval),
            down_interval: secs(k.down_interval, d.down_interval),
            timeout: secs(k.timeout, d.timeout),
            fall: k.fall.unwrap_or(d.fall).max(1),
            rise: k.rise.unwrap_or(d.rise).max(1),
        }
    }

    /// What a peer's health depends on: a reload that changes none of it keeps
    /// the health the peer has.
    pub fn health_key(&self) -> String {
        format!(
            "{}|{}|{:?}",
            self.session_target.get_ref(),
            self.transport,
            self.keepalive()
        )
    }
}

fn default_peer_transport() -> String {
    "udp".into()
}

/// One `[[mailbox]]`, as a line of Asterisk's voicemail.conf.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// `1001` (in context `default`) or `1001@sales`.
    pub mailbox: Spanned<String>,
    /// Digits the owner enters in VoiceMailMain; empty for none.
    #[serde(default)]
    pub pin: String,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_context() -> String {
    "default".into()
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text that came from `path` (used for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let located = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, col) = span.map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Invalid {
                path: shown.clone(),
                line,
                col,
                message,
            }
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| located(e.span(), e.message().to_string()))?;
        config.path = path.to_path_buf();
        config.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));

        if config.sip.listen.is_empty() {
            return Err(located(
                None,
                "[sip] listen must name at least one address".into(),
            ));
        }
        for hook in &config.webhooks {
            let url = hook.url.get_ref();
            let authority = url
                .strip_prefix("http://")
                .map(|r| r.split('/').next().unwrap_or(""));
            if authority.is_none_or(|a| a.is_empty()) {
                return Err(located(
                    Some(hook.url.span()),
                    format!(
                        "webhook url `{url}` must be http://host:port/path (https is not supported; put a TLS proxy in front)"
                    ),
                ));
            }
            for e in &hook.events {
                if !crate::events::KINDS.contains(&e.get_ref().as_str()) {
                    return Err(located(
                        Some(e.span()),
                        format!(
                            "unknown event `{}`; the events are {}",
                            e.get_ref(),
                            crate::events::KINDS.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for ep in &config.endpoints {
            let name = ep.name.get_ref();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.+*#".contains(&b))
            {
                return Err(located(
                    Some(ep.name.span()),
                    format!("endpoint name `{name}` must be letters, digits or -_.+*#"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(located(
                    Some(ep.name.span()),
                    format!("endpoint `{name}` is defined twice"),
                ));
            }
        }
        let mut boxes = HashSet::new();
        for mb in &config.mailboxes {
            let id = crate::voicemail::MailboxId::parse(mb.mailbox.get_ref());
            let Some(id) = id else {
                return Err(located(
                    Some(mb.mailbox.span()),
                    format!(
                        "mailbox `{}` must be NUMBER or NUMBER@CONTEXT (letters, digits, -_.)",
                        mb.mailbox.get_ref()
                    ),
                ));
            };
            if !boxes.insert(id.to_string()) {
                return Err(located(
                    Some(mb.mailbox.span()),
                    format!("mailbox `{id}` is defined twice"),
                ));
            }
            if !mb.pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(located(
                    Some(mb.mailbox.span()),
                    format!("mailbox `{id}`: pin must be digits"),
                ));
            }
        }
        let mut tags = HashSet::new();
        for p in &config.dial_peers {
            let tag = *p.tag.get_ref();
            if !tags.insert(tag) {
                return Err(located(
                    Some(p.tag.span()),
                    format!("dial peer {tag} is defined twice"),
                ));
            }
            if let Err(e) = gateway::pattern::Pattern::parse(p.destination_pattern.get_ref()) {
                // Point at the offending character inside the quoted value.
                let span = p.destination_pattern.span();
                let at = span.start + e.at;
                return Err(located(Some(at..at + 1), e.to_string()));
            }
            if let Err(e) = parse_session_target(p.session_target.get_ref()) {
                return Err(located(
                    Some(p.session_target.span()),
                    format!("dial peer {tag}: {e}"),
                ));
            }
            if let Some(pref) = &p.preference
                && *pref.get_ref() > 10
            {
                return Err(located(
                    Some(pref.span()),
                    format!("dial peer {tag}: preference must be 0 to 10"),
                ));
            }
            if let Some(f) = &p.forward_digits
                && let ForwardDigitsConfig::Word(w) = f.get_ref()
                && gateway::digits::ForwardDigits::parse(w).is_none()
            {
                return Err(located(
                    Some(f.span()),
                    format!(
                        "dial peer {tag}: forward_digits must be a count, \"all\" or \"extra\""
                    ),
                ));
            }
            if let Some(prefix) = &p.prefix
                && !prefix
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"*#+".contains(&b))
            {
                return Err(located(
                    Some(prefix.span()),
                    format!("dial peer {tag}: prefix must be digits, * or #"),
                ));
            }
            if let Some(k) = &p.options_keepalive {
                let bad = [k.interval, k.down_interval, k.timeout]
                    .into_iter()
                    .flatten()
                    .any(|s| !(s > 0.0 && s <= 3600.0));
                if bad {
                    return Err(located(
                        Some(p.tag.span()),
                        format!(
                            "dial peer {tag}: options_keepalive times are seconds, above 0 and at most 3600"
                        ),
                    ));
                }
            }
            for rule in p.translate_called.iter().chain(&p.translate_calling) {
                if let Err(e) = regex::Regex::new(rule.pattern.get_ref()) {
                    // regex's message ends with a line saying what is wrong.
                    let text = e.to_string();
                    let last = text.lines().last().unwrap_or("").trim();
                    let last = last.trim_start_matches("error: ");
                    return Err(located(
                        Some(rule.pattern.span()),
                        format!("dial peer {tag}: translation rule: {last}"),
                    ));
                }
            }
            if p.password.is_some() && p.username.is_none() {
                return Err(located(
                    Some(p.tag.span()),
                    format!("dial peer {tag}: password needs a username"),
                ));
            }
            if p.inbound_auth {
                let named = p.username.as_ref().map(|u| u.get_ref().as_str());
                if !named.is_some_and(|u| config.endpoints.iter().any(|e| e.name.get_ref() == u)) {
                    return Err(located(
                        Some(p.username.as_ref().map_or(p.tag.span(), |u| u.span())),
                        format!(
                            "dial peer {tag}: inbound_auth needs username to name an [[endpoint]] (whose password the peer uses)"
                        ),
                    ));
                }
            }
            if !["udp", "tcp"].contains(&p.transport.as_str()) {
                return Err(located(
                    Some(p.tag.span()),
                    format!(
                        "dial peer {tag}: transport `{}` is not udp or tcp",
                        p.transport
                    ),
                ));
            }
        }
        if let Some(share) = &config.gateway.share
            && gateway::select::Share::parse(share.get_ref()).is_none()
        {
            return Err(located(
                Some(share.span()),
                format!(
                    "[gateway] share `{}` is not hash, least_active or round_robin",
                    share.get_ref()
                ),
            ));
        }
        let r = &config.registrar;
        if r.min_expires > r.max_expires {
            return Err(located(
                None,
                "[registrar] min_expires is larger than max_expires".into(),
            ));
        }
        for alg in &config.auth.algorithms {
            if crate::sip::wire::Algorithm::from_token(alg).is_none_or(|a| a.is_session()) {
                return Err(located(
                    None,
                    format!("[auth] algorithms: `{alg}` is not one of SHA-256, SHA-512-256, MD5"),
                ));
            }
        }
        if config.auth.algorithms.is_empty() {
            return Err(located(None, "[auth] algorithms must not be empty".into()));
        }
        for t in &config.security.trusted {
            if parse_network(t).is_none() {
                return Err(located(
                    None,
                    format!("[security] trusted: `{t}` is not an address or CIDR network"),
                ));
            }
        }
        if parse_port_range(config.rtp.ports.get_ref()).is_none() {
            let span = config.rtp.ports.span();
            return Err(located(
                (span.end > 0).then_some(span),
                format!(
                    "[rtp] ports `{}` must be LOW-HIGH with 1024 <= LOW < HIGH and room for two port pairs",
                    config.rtp.ports.get_ref()
                ),
            ));
        }
        if !media::tones::PLANS.contains(&config.media.tones.as_str()) {
            return Err(located(
                None,
                format!(
                    "[media] tones `{}` is not one of {}",
                    config.media.tones,
                    media::tones::PLANS.join(", ")
                ),
            ));
        }
        let admin = config.admin.listen.get_ref().trim();
        if !admin.eq_ignore_ascii_case("off") {
            let span = config.admin.listen.span();
            let span = (span.end > 0).then_some(span);
            match admin.parse::<SocketAddr>() {
                Err(_) => {
                    return Err(located(
                        span,
                        format!("[admin] listen `{admin}` must be host:port or \"off\""),
                    ));
                }
                Ok(a) if !a.ip().is_loopback() && config.admin.token.is_none() => {
                    return Err(located(
                        span,
                        "[admin] listen is not a loopback address: set [admin] token".into(),
                    ));
                }
                Ok(_) => {}
            }
        }
        if !matches!(
            config.database.sqlite_synchronous.as_str(),
            "full" | "normal"
        ) {
            return Err(located(
                None,
                "[database] sqlite_synchronous must be `full` or `normal`".into(),
            ));
        }
        Ok(config)
    }

    /// The address the media relay binds and announces.
    pub fn rtp_address(&self) -> IpAddr {
        self.rtp.address.unwrap_or(self.sip.listen[0].addr.ip())
    }

    /// The dial peers as the gateway's selection sees them, all usable (health
    /// is the running node's to know).
    pub fn selection_peers(&self) -> Vec<gateway::select::Peer> {
        self.dial_peers
            .iter()
            .filter_map(|p| {
                Some(gateway::select::Peer {
                    tag: *p.tag.get_ref(),
                    pattern: gateway::pattern::Pattern::parse(p.destination_pattern.get_ref())
                        .ok()?,
                    preference: p.preference(),
                    availability: gateway::select::Availability::Usable,
                    active: 0,
                })
            })
            .collect()
    }

    /// The mailbox `id` names, if configured.
    pub fn mailbox(&self, id: &crate::voicemail::MailboxId) -> Option<&MailboxConfig> {
        self.mailboxes
            .iter()
            .find(|m| crate::voicemail::MailboxId::parse(m.mailbox.get_ref()).as_ref() == Some(id))
    }

    /// The mailboxes whose message-waiting state endpoint `name` is told of.
    pub fn mailboxes_of(&self, name: &str) -> Vec<crate::voicemail::MailboxId> {
        let Some(ep) = self.endpoints.iter().find(|e| e.name.get_ref() == name) else {
            return Vec::new();
        };
        match &ep.mailboxes {
            Some(list) => list
                .iter()
                .filter_map(|m| crate::voicemail::MailboxId::parse(m))
                .collect(),
            None => crate::voicemail::MailboxId::parse(name)
                .filter(|id| self.mailbox(id).is_some())
                .into_iter()
                .collect(),
        }
    }

    /// The endpoints told of `id`'s messages.
    pub fn endpoints_of_mailbox(&self, id: &crate::voicemail::MailboxId) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| e.name.get_ref().clone())
            .filter(|n| self.mailboxes_of(n).contains(id))
            .collect()
    }

    /// Resolves a path from the config file against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The database URL with a relative SQLite path made absolute.
    pub fn database_url(&self) -> String {
        match self.database.url.strip_prefix("sqlite://") {
            Some(rest) => {
                let (file, query) = rest
                    .split_once('?')
                    .map_or((rest, None), |(f, q)| (f, Some(q)));
                let abs = self.resolve(Path::new(file));
                match query {
                    Some(q) => format!("sqlite://{}?{q}", abs.display()),
                    None => format!("sqlite://{}", abs.display()),
                }
            }
            None => self.database.url.clone(),
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.iter().find(|e| e.name.get_ref() == name)
    }
}

/// `10.0.0.0/8`, `192.0.2.7` or `::1` as (network, prefix length).
pub fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// A dial peer's `session_target`: `ipv4:A.B.C.D[:port]`, `ipv6:[addr][:port]` or
/// `dns:host[:port]`; the port defaults to 5060.
pub fn parse_session_target(s: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!(
            "session_target `{s}` must be ipv4:A.B.C.D[:port], ipv6:[addr][:port] or dns:host[:port]"
        )
    };
    let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
    let port = |p: Option<&str>| match p {
        None => Ok(5060),
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad),
    };
    match kind {
        "ipv4" => {
            let (host, p) = match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            host.parse::<std::net::Ipv4Addr>().map_err(|_| bad())?;
            Ok((host.to_string(), port(p)?))
        }
        "ipv6" => {
            let inner = rest.strip_prefix('[').ok_or_else(bad)?;
            let (host, after) = inner.split_once(']').ok_or_else(bad)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            let p = after.strip_prefix(':');
            if !after.is_empty() && p.is_none() {
                return Err(bad());
            }
            Ok((format!("[{host}]"), port(p)?))
        }
        "dns" => {
            let (host, p) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(bad());
            }
            Ok((host.to_string(), port(p)?))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("etc/softswitch.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n").unwrap();
        assert_eq!(c.sip.domain, "pbx.local");
        assert_eq!(c.registrar.max_expires, 3600);
        assert_eq!(c.base_dir, Path::new("etc"));
        assert!(
            c.database_url()
                .starts_with("sqlite://etc/var/softswitch.db")
        );
    }

    #[test]
    fn an_admin_api_off_loopback_needs_a_token() {
        let base = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n[admin]\n";
        let err = parse(&format!("{base}listen = \"0.0.0.0:8088\"\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(":4:10:") && msg.contains("token"), "{msg}");
        let ok = parse(&format!(
            "{base}listen = \"0.0.0.0:8088\"\ntoken = \"s3cret\"\n"
        ))
        .unwrap();
        assert_eq!(ok.admin.addr(), Some("0.0.0.0:8088".parse().unwrap()));
        assert_eq!(
            parse(&format!("{base}listen = \"off\"\n"))
                .unwrap()
                .admin
                .addr(),
            None
        );
        let err = parse(&format!("{base}listen = \"localhost\"\n")).unwrap_err();
        assert!(err.to_string().contains("host:port"), "{err}");
    }

    #[test]
    fn webhooks_name_known_events_and_an_http_url() {
        let base = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[webhook]]\n";
        let ok = parse(&format!(
            "{base}url = \"http://127.0.0.1:9000/alerts\"\nevents = [\"peer_down\", \"ban\"]\n"
        ))
        .unwrap();
        let hook = &ok.webhooks[0];
        assert_eq!(hook.target(), ("127.0.0.1:9000", "/alerts"));
        assert!(hook.wants("ban") && !hook.wants("peer_up"));
        assert_eq!(ok.events.mos_threshold, 3.6);
        let err = parse(&format!(
            "{base}url = \"http://h:1/\"\nevents = [\"peer_down\", \"peer_dwn\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains(":5:24: unknown event `peer_dwn`"), "{err}");
        let err = parse(&format!("{base}url = \"https://h/x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":4:7: webhook url `https://h/x` must be http://"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_name_their_position() {
        let err = parse("[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\nlisen = 1\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("etc/softswitch.toml:3:1: unknown field `lisen`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_listen_specs_name_their_position() {
        let err =
            parse("[sip]\nlisten = [\"udp:127.0.0.1:5060\", \"sctp:1.2.3.4:5\"]\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("etc/softswitch.toml:2:"), "{msg}");
        assert!(msg.contains("unknown transport `sctp`"), "{msg}");
    }

    #[test]
    fn duplicate_endpoints_point_at_the_second() {
        let text = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[endpoint]]\nname = \"1001\"\npassword = \"a\"\n\
                    [[endpoint]]\nname = \"1001\"\npassword = \"b\"\n";
        let msg = parse(text).unwrap_err().to_string();
        assert_eq!(
            msg,
            "etc/softswitch.toml:7:8: endpoint `1001` is defined twice"
        );
    }

    #[test]
    fn mailboxes_are_checked_and_reach_their_phones() {
        let base = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
                    [[endpoint]]\nname = \"1001\"\npassword = \"a\"\n\
                    [[endpoint]]\nname = \"1002\"\npassword = \"a\"\nmailboxes = [\"1001\", \"9@sales\"]\n";
        let bad = format!("{base}[[mailbox]]\nmailbox = \"../1001\"\n");
        let msg = parse(&bad).unwrap_err().to_string();
        assert!(
            msg.starts_with("etc/softswitch.toml:11:11: mailbox `../1001` must be"),
            "{msg}"
        );
        let twice = format!(
            "{base}[[mailbox]]\nmailbox = \"1001\"\n[[mailbox]]\nmailbox = \"1001@default\"\n"
        );
        let msg = parse(&twice).unwrap_err().to_string();
        assert!(
            msg.ends_with("mailbox `1001@default` is defined twice"),
            "{msg}"
        );
        let pin = format!("{base}[[mailbox]]\nmailbox = \"1001\"\npin = \"12a\"\n");
        assert!(
            parse(&pin)
                .unwrap_err()
                .to_string()
                .contains("pin must be digits")
        );

        let ok = parse(&format!(
            "{base}[[mailbox]]\nmailbox = \"1001\"\npin = \"1234\"\n"
        ))
        .unwrap();
        let id = crate::voicemail::MailboxId::parse("1001").unwrap();
        assert_eq!(ok.mailbox(&id).unwrap().pin, "1234");
        // 1001 watches its own box by default; 1002 lists it explicitly.
        assert_eq!(ok.endpoints_of_mailbox(&id), ["1001", "1002"]);
    }

    #[test]
    fn session_targets_follow_ios_forms() {
        assert_eq!(
            parse_session_target("ipv4:192.168.100.2"),
            Ok(("192.168.100.2".into(), 5060))
        );
        assert_eq!(
            parse_session_target("ipv4:127.0.0.2:5070"),
            Ok(("127.0.0.2".into(), 5070))
        );
        assert_eq!(
            parse_session_target("ipv6:[::1]:5062"),
            Ok(("[::1]".into(), 5062))
        );
        assert_eq!(
            parse_session_target("dns:pbx-b.example.net"),
            Ok(("pbx-b.example.net".into(), 5060))
        );
        for bad in [
            "ras",
            "ipv4:300.1.1.1",
            "ipv4:1.2.3.4:0",
            "ipv6:::1",
            "dns:",
            "enum:1",
        ] {
            assert!(parse_session_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dial_peers_are_checked_with_positions() {
        let base = "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n";
        let peer = |tag: u32, pattern: &str, extra: &str| {
            format!(
                "[[dial_peer]]\ntag = {tag}\ndestination_pattern = \"{pattern}\"\nsession_target = \"ipv4:127.0.0.2\"\n{extra}"
            )
        };
        let twice = format!("{base}{}{}", peer(1, "22.", ""), peer(1, "33.", ""));
        assert!(
            parse(&twice)
                .unwrap_err()
                .to_string()
                .ends_with("dial peer 1 is defined twice")
        );
        let pref = format!("{base}{}", peer(1, "22.", "preference = 11\n"));
        assert!(
            parse(&pref)
                .unwrap_err()
                .to_string()
                .contains("preference must be 0 to 10")
        );
        let share = format!("{base}[gateway]\nshare = \"random\"\n");
        let msg = parse(&share).unwrap_err().to_string();
        assert!(
            msg.starts_with("etc/softswitch.toml:4:9: [gateway] share `random`"),
            "{msg}"
        );
        let ok = parse(&format!(
            "{base}{}{}",
            peer(1, "22.", ""),
            peer(2, "2...", "preference = 2\n")
        ))
        .unwrap();
        let peers = ok.selection_peers();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[1].preference, 2);

        let err = |extra: &str| {
            parse(&format!("{base}{}", peer(1, "22.", extra)))
                .unwrap_err()
                .to_string()
        };
        let msg = err("forward_digits = \"some\"\n");
        assert!(
            msg.starts_with("etc/softswitch.toml:7:18: dial peer 1: forward_digits"),
            "{msg}"
        );
        let msg = err("prefix = \"0-1\"\n");
        assert!(msg.contains("prefix must be digits"), "{msg}");
        let msg = err("options_keepalive = { interval = 0 }\n");
        assert!(msg.contains("options_keepalive times"), "{msg}");
        let msg = err("options_keepalive = { every = 1 }\n");
        assert!(msg.contains("unknown field `every`"), "{msg}");
        let msg = err("password = \"x\"\n");
        assert!(msg.contains("password needs a username"), "{msg}");
        let msg = err("username = \"trunk\"\ninbound_auth = true\n");
        assert!(
            msg.starts_with("etc/softswitch.toml:7:12: dial peer 1: inbound_auth"),
            "{msg}"
        );
        let msg = err("translate_called = [{ match = \"^9(\", replace = \"\" }]\n");
        assert!(
            msg.starts_with(
                "etc/softswitch.toml:7:31: dial peer 1: translation rule: unclosed group"
            ),
            "{msg}"
        );
        let rules = parse(&format!(
            "{base}{}",
            peer(
                1,
                "9T",
                "digit_strip = true\nforward_digits = 4\nprefix = \"0\"\n"
            )
        ))
        .unwrap()
        .dial_peers[0]
            .digit_rules();
        assert_eq!(
            rules.forward_digits,
            Some(gateway::digits::ForwardDigits::Last(4))
        );
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_network("10.0.0.0/8"),
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(parse_network("::1"), Some(("::1".parse().unwrap(), 128)));
        assert_eq!(parse_network("10.0.0.0/33"), None);
        assert_eq!(parse_network("nope"), None);
    }
}

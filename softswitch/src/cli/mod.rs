//! The `softswitch` command line. Every error reaches the user as one line on stderr
//! and a non-zero exit; usage errors come from clap (exit 2), everything else exits 1.

mod balance;
mod calls;
mod cdr;
mod cluster;
mod dialplan_cmd;
mod peers;
mod registrations;
mod table;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;

pub const DEFAULT_CONFIG: &str = "etc/softswitch.toml";

#[derive(Debug, Parser)]
#[command(
    name = "softswitch",
    version,
    about = "SIP/RTP softswitch: registrar, dialplan, media relay, dial peers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the switch.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// List current registrations (from the running node's admin API, else its
    /// database).
    Registrations {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`, asked
        /// when the config's node is running).
        #[arg(long)]
        node: Option<String>,
        /// One JSON object per binding instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Call detail records, oldest first (from the running node's admin API,
    /// else its database).
    Cdr {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`, asked
        /// when the config's node is running).
        #[arg(long)]
        node: Option<String>,
        /// How many of the most recent calls.
        #[arg(long, default_value_t = 20)]
        last: u32,
        /// One JSON object per call instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drain a running node: new calls get 503 with Retry-After (balancers and
    /// peer switches move them elsewhere), calls in progress finish.
    Drain {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen` of the config).
        #[arg(long)]
        node: Option<String>,
        /// Lift the drain: take new calls again.
        #[arg(long, conflicts_with = "stop")]
        undo: bool,
        /// Stop the node once its last call has ended (Asterisk's `core stop
        /// gracefully`): for upgrades.
        #[arg(long)]
        stop: bool,
    },
    /// The nodes sharing this config's database: up, draining, stopped or lost.
    Cluster {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`, asked
        /// when the config's node is running).
        #[arg(long)]
        node: Option<String>,
        /// One JSON object per node instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Calls in progress on a running node, from its admin API.
    Calls {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen` of the config).
        #[arg(long)]
        node: Option<String>,
        /// One JSON object per call instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a configuration file and report its first problem as file:line:col.
    CheckConfig {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Dialplan authoring tools: check, show, trace.
    Dialplan {
        #[command(subcommand)]
        command: dialplan_cmd::DialplanCommand,
    },
    /// Dial peers; with --explain, the ones a number tries, in order, and why.
    Peers {
        #[arg(long, short, default_value = DEFAULT_CONFIG, global = true)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`, asked
        /// when the config's node is running).
        #[arg(long, global = true)]
        node: Option<String>,
        /// A called number: show its hunt list.
        #[arg(long, value_name = "NUMBER")]
        explain: Option<String>,
        /// The Call-ID the Call-ID hash shares equal peers by.
        #[arg(long, default_value = "explain")]
        call_id: String,
        /// One JSON object per peer instead of a table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<PeerCommand>,
    },
    /// Run the SIP load balancer in front of the cluster's nodes; with --status,
    /// show a running balancer's view of its nodes.
    Balance {
        #[arg(long, short, default_value = "etc/balancer.toml")]
        config: PathBuf,
        /// Ask the running balancer (its `[admin] listen`) instead of starting one.
        #[arg(long)]
        status: bool,
        /// The balancer's admin API, for --status (default: from the config).
        #[arg(long)]
        node: Option<String>,
        /// With --status: the status as one JSON object.
        #[arg(long)]
        json: bool,
        /// Ask the running balancer which node a new dialog with this Call-ID
        /// goes to now.
        #[arg(long, value_name = "CALL-ID")]
        explain: Option<String>,
    },
    /// Dial-peer tools.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
    /// Check the dialplan, then make the running node load it and its dial peers
    /// (through the admin API; SIGHUP when it is off).
    Reload {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`).
        #[arg(long)]
        node: Option<String>,
    },
    /// Hang up a call in progress on a running node (its UNIQUEID, as `softswitch
    /// calls` shows it).
    Hangup {
        uniqueid: String,
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`).
        #[arg(long)]
        node: Option<String>,
    },
    /// A test call into the dialplan from the node's built-in phone: it dials
    /// EXTEN in CONTEXT, plays a 1 kHz tone once answered and hangs up after
    /// --seconds. The outcome is in the node's log and the call's CDR.
    Originate {
        exten: String,
        #[arg(long)]
        context: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Caller ID of the test call (`"Name" <number>`).
        #[arg(long)]
        callerid: Option<String>,
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`).
        #[arg(long)]
        node: Option<String>,
    },
    /// Sources banned for failed logins on a running node; --lift ends a ban.
    Bans {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node's admin API (default: http:// plus `[admin] listen`).
        #[arg(long)]
        node: Option<String>,
        /// Lift the ban of this address.
        #[arg(long, value_name = "ADDRESS")]
        lift: Option<String>,
        /// One JSON object per ban instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// What the operator does to a running node's dial peer; it lasts through
/// reloads until lifted with `enable`.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// No calls and no probes.
    Disable { tag: u32 },
    /// No new calls; calls in progress finish.
    Drain { tag: u32 },
    /// Back in service (probed at once).
    Enable { tag: u32 },
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Turn Cisco IOS `dial-peer voice N voip` blocks into `[[dial_peer]]` TOML
    /// (on stdout; problems as file:line:col on stderr).
    ImportIos {
        /// A router's configuration (`show running-config`).
        file: PathBuf,
    },
}

/// The admin API a command talks to, and the token it presents.
pub(crate) struct AdminTarget {
    pub base: String,
    pub token: Option<String>,
}

impl AdminTarget {
    /// `GET path`, whose answer is a JSON array.
    pub async fn get_list(&self, path: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let v = crate::admin::client::get_json(&self.base, path, self.token.as_deref()).await?;
        match v {
            serde_json::Value::Array(items) => Ok(items),
            other => anyhow::bail!("{}{path} answered {other}, not a list", self.base),
        }
    }
}

/// Where an inspection command reads from.
pub(crate) enum Source {
    /// The running node's admin API.
    Api(AdminTarget),
    /// The database of a node that is not running.
    Database(Box<Config>),
}

/// `--node URL`, else the config's node when it runs (and serves the admin API),
/// else the config's database: a stopped PBX's records stay readable.
pub(crate) fn source(
    config_path: &std::path::Path,
    node: Option<String>,
) -> anyhow::Result<Source> {
    if node.is_some() {
        return Ok(Source::Api(admin_target(config_path, node)?));
    }
    let config = load_config(config_path)?;
    if node_running(&config) && config.admin.addr().is_some() {
        return Ok(Source::Api(admin_target(config_path, None)?));
    }
    Ok(Source::Database(Box::new(config)))
}

/// `--node URL`, else `http://` plus `[admin] listen` of the config. With
/// `--node` the config is optional: it only lends its admin token.
pub(crate) fn admin_target(
    config_path: &std::path::Path,
    node: Option<String>,
) -> anyhow::Result<AdminTarget> {
    let config = match &node {
        Some(_) => Config::load(config_path).ok(),
        None => Some(load_config(config_path)?),
    };
    Ok(AdminTarget {
        base: admin_base(config.as_ref(), node)?,
        token: config.and_then(|c| c.admin.token),
    })
}

/// The admin API's base URL: `node`, else the config's `[admin] listen`.
pub(crate) fn admin_base(config: Option<&Config>, node: Option<String>) -> anyhow::Result<String> {
    match node {
        Some(url) => Ok(url),
        None => {
            let addr = config
                .and_then(|c| c.admin.addr())
                .context("[admin] listen is off in the config: pass --node URL")?;
            Ok(format!("http://{addr}"))
        }
    }
}

/// True when the PID file of `config`'s node names a live process.
pub(crate) fn node_running(config: &Config) -> bool {
    let pid_file = config.resolve(&config.node.pid_file);
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Runs one command's async work on a runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// Runs a command; `Ok(code)` is the exit status.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run { config } => {
            let config = load_config(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(config))?;
            Ok(0)
        }
        Command::Registrations { config, node, json } => {
            block_on(registrations::print(&config, node, json))?;
            Ok(0)
        }
        Command::Cdr {
            config,
            node,
            last,
            json,
        } => {
            block_on(cdr::print(&config, node, last, json))?;
            Ok(0)
        }
        Command::Cluster { config, node, json } => {
            block_on(cluster::print(&config, node, json))?;
            Ok(0)
        }
        Command::Drain {
            config,
            node,
            undo,
            stop,
        } => {
            block_on(calls::drain(&config, node, undo, stop))?;
            Ok(0)
        }
        Command::Calls { config, node, json } => {
            block_on(calls::print(&config, node, json))?;
            Ok(0)
        }
        Command::Dialplan { command } => dialplan_cmd::run(command),
        Command::Peers {
            config,
            node,
            explain,
            call_id,
            json,
            action,
        } => {
            match action {
                Some(action) => {
                    let (word, tag) = match action {
                        PeerCommand::Disable { tag } => ("disable", tag),
                        PeerCommand::Drain { tag } => ("drain", tag),
                        PeerCommand::Enable { tag } => ("enable", tag),
                    };
                    block_on(peers::act(&config, node, word, tag))?;
                }
                None => block_on(peers::print(peers::Request {
                    config: &config,
                    node,
                    explain: explain.as_deref(),
                    call_id: &call_id,
                    json,
                }))?,
            }
            Ok(0)
        }
        Command::Balance {
            config,
            status,
            node,
            json,
            explain,
        } => {
            if let Some(call_id) = explain {
                block_on(balance::explain(&config, node, &call_id, json))?;
                return Ok(0);
            }
            if status {
                block_on(balance::status(&config, node, json))?;
                return Ok(0);
            }
            let config = crate::balance::config::BalancerConfig::load(&config)?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(crate::balance::run(config))?;
            Ok(0)
        }
        Command::Gateway {
            command: GatewayCommand::ImportIos { file },
        } => import_ios(&file),
        Command::Reload { config, node } => dialplan_cmd::reload(&config, node),
        Command::Hangup {
            uniqueid,
            config,
            node,
        } => {
            block_on(calls::hangup(&config, node, &uniqueid))?;
            Ok(0)
        }
        Command::Originate {
            exten,
            context,
            seconds,
            callerid,
            config,
            node,
        } => {
            let target = admin_target(&config, node)?;
            let body = serde_json::json!({
                "exten": exten, "context": context, "seconds": seconds, "callerid": callerid,
            });
            let v = block_on(async {
                crate::admin::client::post_with(
                    &target.base,
                    "/api/originate",
                    target.token.as_deref(),
                    &body,
                )
                .await
                .map_err(anyhow::Error::from)
            })?;
            println!(
                "test call to {exten}@{context} placed (Call-ID {})",
                v["call_id"].as_str().unwrap_or_default()
            );
            Ok(0)
        }
        Command::Bans {
            config,
            node,
            lift,
            json,
        } => {
            block_on(calls::bans(&config, node, lift, json))?;
            Ok(0)
        }
        Command::CheckConfig { config } => {
            let cfg = load_config(&config)?;
            println!(
                "{}: ok ({} endpoints, listening on {})",
                config.display(),
                cfg.endpoints.len(),
                cfg.sip
                    .listen
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(0)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let pid_file = config.resolve(&config.node.pid_file);
    let running = crate::runtime::start(config).await?;
    if let Some(dir) = pid_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let node = running.node.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            // Refused reloads are logged; the running plan and peers stay.
            let _ = node.reload();
        }
    });
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = running.node.idle_after_drain() => {
            tracing::info!("drained: the last call has ended, stopping as asked");
        }
    }
    tracing::info!("shutting down: committing pending registrations");
    running.node.writer.flush().await;
    // Stopped on purpose, not lost: the others need not account for its calls.
    let stopped = running.node.node_row(0, "stopped");
    if let Err(e) = running.node.store.mark_stopped(&stopped).await {
        tracing::warn!(error = %e, "could not mark this node stopped");
    }
    running.node.store.close().await;
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// `softswitch gateway import-ios FILE`: the TOML on stdout, every diagnostic on
/// stderr; exit 1 when any is an error (the TOML then leaves those peers out).
fn import_ios(file: &std::path::Path) -> anyhow::Result<u8> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let import = gateway::ios::import_ios(&text);
    let shown = file.display().to_string();
    for d in &import.diagnostics {
        eprintln!("{}", d.render(&shown));
    }
    print!("# dial peers imported from {shown}\n{}", import.toml);
    Ok(if import.has_errors() { 1 } else { 0 })
}

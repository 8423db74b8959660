//! `softswitch dialplan check|show|trace` and `softswitch reload`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum DialplanCommand {
    /// Parse and validate a dialplan; every problem as file:line:col.
    Check {
        /// The extensions.conf to check (default: the one the config names).
        file: Option<PathBuf>,
        #[arg(long, short, default_value = super::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show the plan as the switch sees it, patterns in the order they are tried.
    Show {
        context: Option<String>,
        /// Only the extensions that match this number.
        #[arg(long)]
        exten: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, short, default_value = super::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Dry-run a new inbound call through the plan and print every step.
    Trace {
        file: Option<PathBuf>,
        #[arg(long)]
        context: String,
        #[arg(long)]
        exten: String,
        /// Caller ID as 'Name <number>' or a bare number.
        #[arg(long)]
        callerid: Option<String>,
        /// Channel variable VAR=VALUE (repeatable).
        #[arg(long = "set", value_name = "VAR=VALUE")]
        set: Vec<String>,
        /// Global variable VAR=VALUE (repeatable).
        #[arg(long = "global", value_name = "VAR=VALUE")]
        global: Vec<String>,
        /// AstDB entry family/key=VALUE (repeatable).
        #[arg(long = "db", value_name = "FAMILY/KEY=VALUE")]
        db: Vec<String>,
        /// Let Dial return this status and go on: ANSWER, BUSY, NOANSWER, CHANUNAVAIL, CONGESTION.
        #[arg(long = "dial-status")]
        dial_status: Option<String>,
        /// JSON Lines for machines.
        #[arg(long)]
        json: bool,
        #[arg(long, short, default_value = super::DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// The dialplan a command works on: the file given, else the config's `[dialplan] file`,
/// else `etc/extensions.conf`.
fn plan_file(file: Option<PathBuf>, config: &Path) -> anyhow::Result<PathBuf> {
    if let Some(f) = file {
        return Ok(f);
    }
    if config.exists() {
        let cfg = Config::load(config)?;
        return Ok(cfg.resolve(&cfg.dialplan.file));
    }
    Ok(PathBuf::from("etc/extensions.conf"))
}

pub fn run(cmd: DialplanCommand) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let code = match cmd {
        DialplanCommand::Check { file, config } => {
            dialplan::tools::check(&plan_file(file, &config)?, &mut out)
        }
        DialplanCommand::Show {
            context,
            exten,
            file,
            config,
        } => dialplan::tools::show(
            &plan_file(file, &config)?,
            context.as_deref(),
            exten.as_deref(),
            &mut out,
        ),
        DialplanCommand::Trace {
            file,
            context,
            exten,
            callerid,
            set,
            global,
            db,
            dial_status,
            json,
            config,
        } => {
            let opts = dialplan::tools::TraceOptions {
                file: plan_file(file, &config)?,
                context,
                exten,
                callerid,
                set,
                global,
                db,
                dial_status,
                json,
                now: None,
                time_zone: None,
            };
            dialplan::tools::trace(&opts, &mut out)
        }
    };
    Ok(code.clamp(0, 255) as u8)
}

/// Checks the dialplan the way the node will, then asks the running node to load it.
pub fn reload(config_path: &Path, node: Option<String>) -> anyhow::Result<u8> {
    let config = Config::load(config_path)?;
    let plan = config.resolve(&config.dialplan.file);
    let loaded = match dialplan::Dialplan::load(&plan) {
        Ok(loaded) => loaded,
        Err(failure) => {
            for d in &failure.diagnostics {
                eprint!("{d}");
            }
            anyhow::bail!(
                "{} cannot be loaded; the running plan stays",
                plan.display()
            );
        }
    };
    // Problems that do not stop a load (Asterisk loads such plans too) are shown so
    // the author sees them before a call runs into one.
    let lint = dialplan::lint(&loaded.plan);
    for d in loaded.diagnostics.iter().chain(&lint) {
        eprint!("{d}");
    }
    // Through the admin API when there is one: the node checks again and says
    // what it loaded, or why it refused.
    if node.is_some() || config.admin.addr().is_some() {
        let target = super::admin_target(config_path, node)?;
        let v = super::block_on(async {
            crate::admin::client::post_json(&target.base, "/api/reload", target.token.as_deref())
                .await
                .map_err(anyhow::Error::from)
        })?;
        println!(
            "reloaded: {} context(s) from {}, {} dial peer(s)",
            v["contexts"],
            plan.display(),
            v["peers"]
        );
        return Ok(0);
    }
    let pid_file = config.resolve(&config.node.pid_file);
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no running node: cannot read {}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a PID", pid_file.display()))?;
    // SAFETY: kill(2) with a PID read from our own PID file and a fixed signal.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        anyhow::bail!(
            "cannot signal node (pid {pid} from {}): {}",
            pid_file.display(),
            std::io::Error::last_os_error()
        );
    }
    println!("reload requested: node pid {pid} loads {}", plan.display());
    Ok(0)
}

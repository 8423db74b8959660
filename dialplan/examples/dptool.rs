//! A bare command line over the authoring tools, for trying them without the
//! `softswitch` binary:
//!
//! ```text
//! cargo run -p dialplan --example dptool -- check FILE
//! cargo run -p dialplan --example dptool -- show FILE [CONTEXT] [EXTEN]
//! cargo run -p dialplan --example dptool -- trace FILE CONTEXT EXTEN [--json] [--dial-status S]
//!     [--callerid C] [--set V=X]... [--global V=X]... [--db f/k=X]...
//! ```

use std::path::PathBuf;

use dialplan::tools::{TraceOptions, check, show, trace};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    let code = match args.first().map(String::as_str) {
        Some("check") if args.len() == 2 => check(&PathBuf::from(&args[1]), &mut out),
        Some("show") if args.len() >= 2 => show(
            &PathBuf::from(&args[1]),
            args.get(2).map(String::as_str),
            args.get(3).map(String::as_str),
            &mut out,
        ),
        Some("trace") if args.len() >= 4 => {
            let mut o = TraceOptions {
                file: PathBuf::from(&args[1]),
                context: args[2].clone(),
                exten: args[3].clone(),
                ..Default::default()
            };
            let mut it = args[4..].iter();
            while let Some(a) = it.next() {
                let mut val = || it.next().cloned().unwrap_or_default();
                match a.as_str() {
                    "--json" => o.json = true,
                    "--dial-status" => o.dial_status = Some(val()),
                    "--callerid" => o.callerid = Some(val()),
                    "--set" => o.set.push(val()),
                    "--global" => o.global.push(val()),
                    "--db" => o.db.push(val()),
                    other => {
                        eprintln!("unknown option {other}");
                        std::process::exit(2);
                    }
                }
            }
            trace(&o, &mut out)
        }
        _ => {
            eprintln!(
                "usage: dptool check FILE | show FILE [CONTEXT] [EXTEN] | trace FILE CONTEXT EXTEN [options]"
            );
            2
        }
    };
    std::process::exit(code);
}

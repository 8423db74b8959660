//! Dialplan functions (§11): reads through `${NAME(args)}` and writes through
//! `Set(NAME(args)=value)`.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::args::{Split, split_args, split_once_grouped};
use crate::subst::Resolver;
use crate::timespec::TimeSpec;

use super::channel::Scope;
use super::truth::check_condition;

/// Reads function `name`; `None` when there is no such function (§8.2: a warning and
/// an empty result).
pub(crate) fn read(s: &mut Scope<'_>, name: &str, args: &str) -> Option<String> {
    Some(match name {
        "LEN" => args.len().to_string(),
        "ISNULL" => bool01(args.is_empty()),
        "EXISTS" => bool01(!args.is_empty()),
        "TOUPPER" => args.to_uppercase(),
        "TOLOWER" => args.to_lowercase(),
        "CALLERID" => callerid_read(s, args),
        "IF" => if_fn(args),
        "IFTIME" => iftime(s, args),
        "SET" => {
            let (n, v) = args.split_once('=').unwrap_or((args, ""));
            s.set(n.trim(), v);
            v.to_string()
        }
        "GLOBAL" => s.env.globals().get(args.trim()).unwrap_or_default(),
        "DEVICE_STATE" => s.env.device_state(args.trim()),
        "DB" => {
            let (f, k) = db_key(s, args)?;
            match s.env.db().get(&f, &k) {
                Some(v) => {
                    s.set_plain("DB_RESULT", &v);
                    v
                }
                None => String::new(),
            }
        }
        "DB_EXISTS" => {
            let (f, k) = db_key(s, args)?;
            match s.env.db().get(&f, &k) {
                Some(v) => {
                    s.set_plain("DB_RESULT", &v);
                    "1".into()
                }
                None => "0".into(),
            }
        }
        "DB_DELETE" => {
            let (f, k) = db_key(s, args)?;
            match s.env.db().delete(&f, &k) {
                Some(v) => {
                    s.set_plain("DB_RESULT", &v);
                    v
                }
                None => String::new(),
            }
        }
        "CUT" => cut(s, args),
        "REGEX" => regex_fn(s, args),
        "STRFTIME" => strftime(s, args),
        "RAND" => rand(s, args),
        "EXCEPTION" => {
            let e = s.chan.exception.clone().unwrap_or_default();
            match args.trim().to_ascii_lowercase().as_str() {
                "reason" => e.reason,
                "context" => e.context,
                "exten" => e.exten,
                "priority" if s.chan.exception.is_some() => e.priority.to_string(),
                _ => String::new(),
            }
        }
        "LOCAL" => s.variable(args.trim()).unwrap_or_default(),
        "TIMEOUT" => timeout_read(s, args),
        "CHANNEL" => match args.trim() {
            "name" => s.chan.name.clone(),
            "uniqueid" => s.chan.uniqueid.clone(),
            "context" => s.chan.context.clone(),
            "exten" => s.chan.exten.clone(),
            "priority" => s.chan.priority.to_string(),
            "state" => if s.chan.answered { "Up" } else { "Ring" }.into(),
            "language" => "en".into(),
            "channeltype" => s.chan.name.split('/').next().unwrap_or("").to_string(),
            other => {
                s.warnings
                    .push(format!("CHANNEL({other}) is not supported here"));
                String::new()
            }
        },
        _ => return None,
    })
}

/// Writes function `name`. Errors are warnings (Asterisk logs them and goes on).
pub(crate) fn write(s: &mut Scope<'_>, name: &str, args: &str, value: &str) -> Result<(), String> {
    match name {
        "CALLERID" => {
            match args.trim().to_ascii_lowercase().as_str() {
                "num" | "number" => s.chan.caller_num = Some(value.to_string()),
                "pres" | "num-pres" | "name-pres" => {
                    const VALUES: [&str; 9] = [
                        "allowed_not_screened",
                        "allowed_passed_screen",
                        "allowed_failed_screen",
                        "allowed",
                        "prohib_not_screened",
                        "prohib_passed_screen",
                        "prohib_failed_screen",
                        "prohib",
                        "unavailable",
                    ];
                    let v = value.trim().to_ascii_lowercase();
                    if !VALUES.contains(&v.as_str()) {
                        return Err(format!(
                            "CALLERID(pres): `{value}` is not one of {}",
                            VALUES.join(", ")
                        ));
                    }
                    s.chan.caller_pres = v;
                }
                "name" => s.chan.caller_name = Some(value.to_string()),
                "all" => {
                    let (n, num) = parse_callerid(value);
                    s.chan.caller_name = n;
                    s.chan.caller_num = num;
                }
                other => return Err(format!("CALLERID({other}) cannot be written here")),
            }
            Ok(())
        }
        "GLOBAL" => {
            s.env.globals().set(args.trim(), value);
            Ok(())
        }
        "DB" => {
            let (f, k) = db_key(s, args).ok_or_else(|| format!("DB({args}): bad family/key"))?;
            s.env.db().put(&f, &k, value);
            Ok(())
        }
        "LOCAL" => {
            if s.chan.frames.is_empty() {
                s.warnings
                    .push("LOCAL() used outside a Gosub; setting a channel variable".into());
            }
            s.set_local(args.trim(), value);
            Ok(())
        }
        "TIMEOUT" => {
            let secs: f64 = value.trim().parse().unwrap_or(0.0);
            match args.trim().to_ascii_lowercase().as_str() {
                "absolute" | "a" => {
                    s.chan.absolute_deadline = if secs > 0.0 {
                        s.env
                            .now()
                            .checked_add(jiff::SignedDuration::from_millis((secs * 1000.0) as i64))
                            .ok()
                    } else {
                        None
                    };
                }
                "digit" | "d" => s.chan.digit_timeout = secs.max(0.0),
                "response" | "r" => s.chan.response_timeout = secs.max(0.0),
                other => return Err(format!("TIMEOUT({other}): unknown timeout type")),
            }
            Ok(())
        }
        "SET" | "LEN" | "ISNULL" | "EXISTS" | "IF" | "CUT" | "REGEX" | "STRFTIME" | "RAND"
        | "EXCEPTION" | "DB_EXISTS" | "DB_DELETE" | "IFTIME" | "TOUPPER" | "TOLOWER" => {
            Err(format!("function {name}() cannot be written"))
        }
        "CHANNEL" => Err(format!("CHANNEL({args}) cannot be written here")),
        _ => Err(format!("unknown function '{name}' in Set()")),
    }
}

fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

fn callerid_read(s: &Scope<'_>, args: &str) -> String {
    let num = s.chan.caller_num.clone().unwrap_or_default();
    let name = s.chan.caller_name.clone().unwrap_or_default();
    match args.trim().to_ascii_lowercase().as_str() {
        "num" | "number" | "ani" => num,
        "name" => name,
        "all" => match (name.is_empty(), num.is_empty()) {
            (false, false) => format!("\"{name}\" <{num}>"),
            (false, true) => format!("\"{name}\" <>"),
            (true, false) => format!("<{num}>"),
            (true, true) => String::new(),
        },
        "num-valid" | "name-valid" => "1".into(),
        "pres" | "num-pres" | "name-pres" => s.chan.caller_pres.clone(),
        _ => String::new(),
    }
}

/// Parses `"Name" <num>`, `Name <num>` or a bare number.
pub(crate) fn parse_callerid(v: &str) -> (Option<String>, Option<String>) {
    let v = v.trim();
    if let (Some(open), Some(close)) = (v.rfind('<'), v.rfind('>'))
        && open < close
    {
        let num = v[open + 1..close].trim().to_string();
        let name = v[..open].trim().trim_matches('"').trim().to_string();
        return (
            (!name.is_empty()).then_some(name),
            (!num.is_empty()).then_some(num),
        );
    }
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
        (None, Some(v.to_string()))
    } else {
        (
            (!v.is_empty()).then(|| v.trim_matches('"').to_string()),
            None,
        )
    }
}

/// Removes quotes and backslashes the way the standard splitter does.
fn unquote(s: &str) -> String {
    split_args(s, '\u{0}', Split::Standard).concat()
}

fn if_fn(args: &str) -> String {
    let (cond, rest) = split_once_grouped(args, '?');
    let rest = rest.unwrap_or_default();
    let (t, f) = split_once_grouped(&rest, ':');
    if check_condition(&unquote(&cond)) {
        unquote(&t).trim().to_string()
    } else {
        unquote(&f.unwrap_or_default()).trim().to_string()
    }
}

fn iftime(s: &mut Scope<'_>, args: &str) -> String {
    let (spec, rest) = split_once_grouped(args, '?');
    let rest = rest.unwrap_or_default();
    let (t, f) = split_once_grouped(&rest, ':');
    let hit = time_matches(s, &spec);
    if hit { t } else { f.unwrap_or_default() }
        .trim()
        .to_string()
}

/// Tests a time spec against now (or `${TESTTIME}`, §12.4).
pub(crate) fn time_matches(s: &mut Scope<'_>, spec: &str) -> bool {
    let fields: Vec<&str> = spec.split([',', '|']).collect();
    match TimeSpec::from_fields(&fields) {
        Ok(t) => {
            let now = s
                .variable("TESTTIME")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|e| Timestamp::from_second(e).ok())
                .unwrap_or_else(|| s.env.now());
            t.matches(now, &s.env.time_zone())
        }
        Err(e) => {
            s.warnings
                .push(format!("bad time specification '{spec}': {e}"));
            false
        }
    }
}

fn db_key(s: &mut Scope<'_>, args: &str) -> Option<(String, String)> {
    let a = args.trim();
    let Some((f, k)) = a.split_once('/') else {
        s.warnings
            .push(format!("AstDB key '{a}' has no '/' (expected family/key)"));
        return None;
    };
    if k.is_empty() || k.starts_with('/') || k.ends_with('/') || k.contains("//") {
        s.warnings.push(format!("AstDB key '{a}' is malformed"));
    }
    Some((f.to_string(), k.to_string()))
}

fn cut(s: &mut Scope<'_>, args: &str) -> String {
    let a = split_args(args, ',', Split::Standard);
    let var = a.first().map(|v| v.trim().to_string()).unwrap_or_default();
    let delim = a.get(1).and_then(|d| d.chars().next()).unwrap_or('-');
    let spec = a.get(2).cloned().unwrap_or_else(|| "1".into());
    let value = s.variable(&var).unwrap_or_default();
    let fields: Vec<&str> = value.split(delim).collect();
    let n = fields.len();
    let mut out: Vec<&str> = Vec::new();
    for part in spec.split('&') {
        let part = part.trim();
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().unwrap_or(1),
                b.trim().parse::<usize>().unwrap_or(n),
            ),
            None => match part.parse::<usize>() {
                Ok(v) => (v, v),
                Err(_) => {
                    s.warnings.push(format!("CUT: bad field spec '{part}'"));
                    continue;
                }
            },
        };
        for i in from.max(1)..=to.min(n) {
            out.push(fields[i - 1]);
        }
    }
    out.join(&delim.to_string())
}

fn regex_fn(s: &mut Scope<'_>, args: &str) -> String {
    let t = args.trim_start();
    let parsed = t.strip_prefix('"').and_then(|r| {
        let close = r.find('"')?;
        let subject = &r[close + 1..];
        Some((&r[..close], subject.strip_prefix(' ').unwrap_or(subject)))
    });
    let Some((re, subject)) = parsed else {
        s.warnings
            .push("REGEX: expected '\"regex\" string'".to_string());
        return String::new();
    };
    match regex::Regex::new(re) {
        Ok(r) => bool01(r.is_match(subject)),
        Err(_) => {
            s.warnings
                .push(format!("REGEX: invalid regular expression '{re}'"));
            String::new()
        }
    }
}

fn strftime(s: &mut Scope<'_>, args: &str) -> String {
    let a = split_args(args, ',', Split::Standard);
    let epoch = a
        .first()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|v| Timestamp::from_second(v.trunc() as i64).ok())
        .unwrap_or_else(|| s.env.now());
    let tz = match a.get(1).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(name) => TimeZone::get(name).unwrap_or_else(|_| {
            s.warnings
                .push(format!("STRFTIME: unknown time zone '{name}'"));
            s.env.time_zone()
        }),
        None => s.env.time_zone(),
    };
    let fmt = a
        .get(2..)
        .map(|rest| rest.join(","))
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "%c".into());
    // The C locale's spellings of the locale-dependent conversions.
    let fmt = fmt
        .replace("%c", "%a %b %e %H:%M:%S %Y")
        .replace("%x", "%m/%d/%y")
        .replace("%X", "%H:%M:%S");
    let zoned = epoch.to_zoned(tz);
    jiff::fmt::strtime::format(fmt.as_bytes(), &zoned).unwrap_or_else(|e| {
        s.warnings.push(format!("STRFTIME: {e}"));
        String::new()
    })
}

fn rand(s: &mut Scope<'_>, args: &str) -> String {
    let a = split_args(args, ',', Split::Standard);
    let parse = |i: usize, d: i64| {
        a.get(i)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(d)
    };
    let (mut lo, mut hi) = (parse(0, 0), parse(1, 2147483647));
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    let span = (hi - lo) as u64 + 1;
    (lo + (s.env.random() % span) as i64).to_string()
}

fn timeout_read(s: &mut Scope<'_>, args: &str) -> String {
    match args.trim().to_ascii_lowercase().as_str() {
        "digit" | "d" => format!("{:.3}", s.chan.digit_timeout),
        "response" | "r" => format!("{:.3}", s.chan.response_timeout),
        "absolute" | "a" => match s.chan.absolute_deadline {
            Some(d) => {
                let left = d.as_second() - s.env.now().as_second();
                left.max(0).to_string()
            }
            None => "0".into(),
        },
        other => {
            s.warnings
                .push(format!("TIMEOUT({other}): unknown timeout type"));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callerid_parsing() {
        assert_eq!(
            parse_callerid("\"Alice\" <1001>"),
            (Some("Alice".into()), Some("1001".into()))
        );
        assert_eq!(parse_callerid("1001"), (None, Some("1001".into())));
        assert_eq!(parse_callerid("Bob <>"), (Some("Bob".into()), None));
    }

    #[test]
    fn if_function() {
        assert_eq!(if_fn("1?yes:no"), "yes");
        assert_eq!(if_fn("0?yes:no"), "no");
        assert_eq!(if_fn("?yes:no"), "no");
        assert_eq!(if_fn("1? a b :c"), "a b");
        assert_eq!(if_fn("0?x"), "");
    }
}

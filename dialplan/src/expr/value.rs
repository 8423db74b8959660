//! Values and operators of `$[...]` (§10.3).

use std::cmp::Ordering;

use super::lexer::Tok;
use super::number::Num;
use crate::subst::Resolver;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Num(Num),
    /// Digits (and dots) that have not been used in arithmetic yet: printed as
    /// written (`$[007]` is `007`).
    NumStr(String),
    Str(String),
}

impl Val {
    /// Asterisk's `make_str`: text made only of digits and dots is a numeric string.
    pub fn from_text(s: String) -> Val {
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            Val::NumStr(s)
        } else {
            Val::Str(s)
        }
    }

    pub fn number(&self) -> Option<Num> {
        match self {
            Val::Num(n) => Some(*n),
            Val::NumStr(s) if s.is_empty() => Some(Num::ZERO),
            Val::NumStr(s) => Num::parse_prefix(s),
            Val::Str(_) => None,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Val::Str(_))
    }

    pub fn text(&self) -> String {
        match self {
            Val::Num(n) => n.format(),
            Val::NumStr(s) | Val::Str(s) => s.clone(),
        }
    }

    pub fn into_string(self) -> String {
        match self {
            Val::Num(n) => n.format(),
            Val::NumStr(s) | Val::Str(s) => s,
        }
    }

    /// The number 0, the empty string, or a numeric string equal to 0.
    pub fn zero_or_empty(&self) -> bool {
        match self {
            Val::Num(n) => n.is_zero(),
            Val::Str(s) => s.is_empty(),
            Val::NumStr(s) => s.is_empty() || self.number().is_some_and(|n| n.is_zero()),
        }
    }

    /// Truth of the `?::` condition.
    pub fn truthy_cond(&self) -> bool {
        match self {
            Val::Str(s) => !(s.is_empty() || s == "\"\"" || s == "0"),
            _ => self.number().is_some_and(|n| !n.is_zero()),
        }
    }
}

pub(super) fn compare(op: &Tok, a: Val, b: Val) -> Val {
    let ord = if a.is_string() || b.is_string() {
        // strcoll in the C locale is byte order.
        a.text().as_bytes().cmp(b.text().as_bytes())
    } else {
        match (a.number(), b.number()) {
            (Some(x), Some(y)) => x.cmp_num(y),
            _ => a.text().cmp(&b.text()),
        }
    };
    let t = match op {
        Tok::Eq => ord == Ordering::Equal,
        Tok::Ne => ord != Ordering::Equal,
        Tok::Lt => ord == Ordering::Less,
        Tok::Gt => ord == Ordering::Greater,
        Tok::Le => ord != Ordering::Greater,
        _ => ord != Ordering::Less,
    };
    Val::Num(Num::from_f64(if t { 1.0 } else { 0.0 }))
}

pub(super) fn arith(op: &Tok, a: Val, b: Val, r: &mut dyn Resolver) -> Val {
    let (x, y) = (a.number(), b.number());
    if x.is_none() || y.is_none() {
        r.warn("non-numeric argument in expression".into());
    }
    let n = |v: Num| Val::Num(v);
    match op {
        Tok::Plus => match (x, y) {
            (Some(x), Some(y)) => n(x.plus(y)),
            (None, Some(y)) => n(y),
            (Some(x), None) => n(x),
            (None, None) => n(Num::ZERO),
        },
        Tok::Minus => match (x, y) {
            (Some(x), Some(y)) => n(x.minus(y)),
            (None, Some(y)) => n(y.negated()),
            (Some(x), None) => n(x),
            (None, None) => n(Num::ZERO),
        },
        Tok::Mul => match (x, y) {
            (Some(x), Some(y)) => n(x.times(y)),
            _ => n(Num::ZERO),
        },
        Tok::Div => match (x, y) {
            (None, _) => n(Num::ZERO),
            (Some(_), None) => n(Num::from_f64(2147483647.0)),
            (Some(_), Some(y)) if y.is_zero() => {
                r.warn("division by zero in expression".into());
                n(Num::from_f64(2147483647.0))
            }
            (Some(x), Some(y)) => n(x.divided(y)),
        },
        _ => match (x, y) {
            (Some(x), Some(y)) if !y.is_zero() => n(x.modulo(y)),
            (Some(_), Some(_)) => {
                r.warn("division by zero in expression".into());
                n(Num::ZERO)
            }
            _ => n(Num::ZERO),
        },
    }
}

pub(super) fn negate(v: Val, r: &mut dyn Resolver) -> Val {
    match v.number() {
        Some(x) => Val::Num(x.negated()),
        None => {
            r.warn("non-numeric argument in expression".into());
            Val::Num(Num::ZERO)
        }
    }
}

pub(super) fn not(v: Val) -> Val {
    let t = match &v {
        Val::Num(n) => n.is_zero(),
        Val::NumStr(s) | Val::Str(s) => s.is_empty() || s == "0" || atoi(s) == 0,
    };
    Val::Num(Num::from_f64(if t { 1.0 } else { 0.0 }))
}

fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let end = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .count();
    t[..end].parse().unwrap_or(0)
}

fn strip_quotes(s: &str) -> &str {
    let s = s.strip_prefix('"').unwrap_or(s);
    s.strip_suffix('"').unwrap_or(s)
}

pub(super) fn concat(a: Val, b: Val) -> Val {
    let s = format!("{}{}", strip_quotes(&a.text()), strip_quotes(&b.text()));
    Val::from_text(s)
}

/// `a : re` (anchored) and `a =~ re` with POSIX extended regular expressions. The
/// `regex` crate is leftmost-first where POSIX is leftmost-longest; for the patterns
/// dialplans use (`[0-9]+`, `(..)`, `.*`) the results agree.
pub(super) fn regex_match(a: Val, b: Val, anchored: bool, r: &mut dyn Resolver) -> Val {
    let text = a.text();
    let subject = strip_quotes(&text);
    let pat_text = b.text();
    let pat = strip_quotes(&pat_text);
    let full = if anchored {
        format!("^(?:{pat})")
    } else {
        pat.to_string()
    };
    let re = match regex::Regex::new(&full) {
        Ok(re) => re,
        Err(_) => {
            r.warn(format!("invalid regular expression '{pat}'"));
            return Val::Str(String::new());
        }
    };
    let has_group = re.captures_len() > 1;
    match re.captures(subject) {
        Some(c) if has_group => Val::from_text(c.get(1).map(|m| m.as_str()).unwrap_or("").into()),
        Some(c) => {
            let m = c.get(0).expect("group 0 always exists");
            Val::Num(Num::from_f64((m.end() - m.start()) as f64))
        }
        None if has_group => Val::Str(String::new()),
        None => Val::Num(Num::ZERO),
    }
}

/// Built-in math functions, else the dialplan function of that name (§10.3).
pub(super) fn call(name: &str, args: Vec<Val>, r: &mut dyn Resolver) -> Val {
    let nums: Option<Vec<f64>> = args
        .iter()
        .map(|a| a.number().map(|n| n.to_f64()))
        .collect();
    let one = |f: fn(f64) -> f64| -> Option<f64> {
        let v = nums.as_ref()?;
        (v.len() == 1).then(|| f(v[0]))
    };
    let two = |f: fn(f64, f64) -> f64| -> Option<f64> {
        let v = nums.as_ref()?;
        (v.len() == 2).then(|| f(v[0], v[1]))
    };
    let math = match name {
        "COS" => Some(one(f64::cos)),
        "SIN" => Some(one(f64::sin)),
        "TAN" => Some(one(f64::tan)),
        "ACOS" => Some(one(f64::acos)),
        "ASIN" => Some(one(f64::asin)),
        "ATAN" => Some(one(f64::atan)),
        "ATAN2" => Some(two(f64::atan2)),
        "POW" => Some(two(f64::powf)),
        "SQRT" => Some(one(f64::sqrt)),
        "FLOOR" => Some(one(f64::floor)),
        "CEIL" => Some(one(f64::ceil)),
        "ROUND" => Some(one(f64::round)),
        "RINT" => Some(one(f64::round_ties_even)),
        "TRUNC" => Some(one(f64::trunc)),
        "EXP" => Some(one(f64::exp)),
        "EXP2" => Some(one(f64::exp2)),
        "EXP10" => Some(one(|x| 10f64.powf(x))),
        "LOG" => Some(one(f64::ln)),
        "LOG2" => Some(one(f64::log2)),
        "LOG10" => Some(one(f64::log10)),
        "REMAINDER" => Some(two(|a, b| a - (a / b).round_ties_even() * b)),
        "ABS" => Some(one(f64::abs)),
        _ => None,
    };
    if let Some(res) = math {
        return match res {
            Some(v) => Val::Num(Num::from_f64(v)),
            None => {
                r.warn(format!("bad arguments to {name}() in expression"));
                Val::Num(Num::ZERO)
            }
        };
    }
    let joined: Vec<String> = args.iter().map(|a| a.text()).collect();
    match r.function(name, &joined.join(",")) {
        Some(v) => Val::from_text(v),
        None => {
            r.warn(format!("unknown function '{name}' in expression"));
            Val::Str(String::new())
        }
    }
}

//! Expression numbers. Asterisk computes with `long double` and prints `%.18Lg`
//! (§10.4). An `f64` alone prints `10/3` as `3.33333333333333348`; a double-double
//! (two `f64`s, ~32 significant digits) rounds to the same 18 digits Asterisk prints
//! (`3.33333333333333333`) and keeps `0.1 + 0.2` at `0.3`.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    hi: f64,
    lo: f64,
}

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn quick_two_sum(a: f64, b: f64) -> Num {
    let s = a + b;
    Num {
        hi: s,
        lo: b - (s - a),
    }
}

impl Num {
    pub const ZERO: Num = Num { hi: 0.0, lo: 0.0 };

    pub fn from_f64(v: f64) -> Num {
        Num { hi: v, lo: 0.0 }
    }

    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    pub fn is_zero(self) -> bool {
        self.hi == 0.0
    }

    pub fn plus(self, o: Num) -> Num {
        if !self.hi.is_finite() || !o.hi.is_finite() {
            return Num::from_f64(self.hi + o.hi);
        }
        let (s, e) = two_sum(self.hi, o.hi);
        quick_two_sum(s, e + self.lo + o.lo)
    }

    pub fn negated(self) -> Num {
        Num {
            hi: -self.hi,
            lo: -self.lo,
        }
    }

    pub fn minus(self, o: Num) -> Num {
        self.plus(o.negated())
    }

    pub fn times(self, o: Num) -> Num {
        let p = self.hi * o.hi;
        if !p.is_finite() {
            return Num::from_f64(p);
        }
        let e = self.hi.mul_add(o.hi, -p) + (self.hi * o.lo + self.lo * o.hi);
        quick_two_sum(p, e)
    }

    pub fn divided(self, o: Num) -> Num {
        let q1 = self.hi / o.hi;
        if !q1.is_finite() {
            return Num::from_f64(q1);
        }
        let r = self.minus(o.times(Num::from_f64(q1)));
        let q2 = r.hi / o.hi;
        let r = r.minus(o.times(Num::from_f64(q2)));
        let q3 = r.hi / o.hi;
        quick_two_sum(q1, q2).plus(Num::from_f64(q3))
    }

    /// `fmodl`: the remainder with the sign of the dividend.
    pub fn modulo(self, o: Num) -> Num {
        let q = self.divided(o).trunc();
        self.minus(o.times(q))
    }

    pub fn trunc(self) -> Num {
        if self.hi < 0.0 {
            self.negated().floor().negated()
        } else {
            self.floor()
        }
    }

    pub fn floor(self) -> Num {
        let h = self.hi.floor();
        if h == self.hi {
            quick_two_sum(h, self.lo.floor())
        } else {
            Num::from_f64(h)
        }
    }

    fn pow10(k: u32) -> Num {
        let mut r = Num::from_f64(1.0);
        let ten = Num::from_f64(10.0);
        for _ in 0..k {
            r = r.times(ten);
        }
        r
    }

    /// Parses a decimal number the way `strtold` reads a prefix: optional sign, digits,
    /// optional fraction. Returns `None` when no digit was read.
    pub fn parse_prefix(s: &str) -> Option<Num> {
        let t = s.trim_start();
        let (neg, t) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let int_len = t.bytes().take_while(u8::is_ascii_digit).count();
        let rest = &t[int_len..];
        let frac = match rest.strip_prefix('.') {
            Some(f) => &f[..f.bytes().take_while(u8::is_ascii_digit).count()],
            None => "",
        };
        if int_len == 0 && frac.is_empty() {
            return None;
        }
        let digits = format!("{}{}", &t[..int_len], frac);
        let v = if digits.len() > 30 {
            let int = if int_len == 0 { "0" } else { &t[..int_len] };
            Num::from_f64(format!("{int}.{frac}0").parse::<f64>().ok()?)
        } else {
            let mut m = Num::ZERO;
            let ten = Num::from_f64(10.0);
            for d in digits.bytes() {
                m = m.times(ten).plus(Num::from_f64((d - b'0') as f64));
            }
            if frac.is_empty() {
                m
            } else {
                m.divided(Num::pow10(frac.len() as u32))
            }
        };
        Some(if neg { v.negated() } else { v })
    }

    pub fn cmp_num(self, o: Num) -> Ordering {
        self.hi
            .partial_cmp(&o.hi)
            .unwrap_or(Ordering::Equal)
            .then(self.lo.partial_cmp(&o.lo).unwrap_or(Ordering::Equal))
    }

    /// `printf("%.18Lg")`.
    pub fn format(self) -> String {
        const P: i32 = 18;
        if self.hi.is_nan() {
            return "nan".into();
        }
        if self.hi.is_infinite() {
            return if self.hi > 0.0 { "inf" } else { "-inf" }.into();
        }
        if self.hi == 0.0 {
            return if self.hi.is_sign_negative() {
                "-0"
            } else {
                "0"
            }
            .into();
        }
        let neg = self.hi < 0.0;
        let a = if neg { self.negated() } else { self };
        let mut e = a.hi.log10().floor() as i32;
        let mut n = scaled_digits(a, P - 1 - e);
        let lim = 10i128.pow(P as u32);
        if n >= lim {
            e += 1;
            n = scaled_digits(a, P - 1 - e);
        } else if n < lim / 10 {
            e -= 1;
            n = scaled_digits(a, P - 1 - e);
        }
        if n >= lim {
            // Rounding carried into a new digit (e.g. 9.99...95).
            n /= 10;
            e += 1;
        }
        let digits = n.to_string();
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if !(-4..P).contains(&e) {
            let mantissa = digits.trim_end_matches('0');
            out.push_str(&mantissa[..1]);
            if mantissa.len() > 1 {
                out.push('.');
                out.push_str(&mantissa[1..]);
            }
            out.push_str(&format!("e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()));
        } else if e >= 0 {
            let (int, frac) = digits.split_at((e + 1) as usize);
            out.push_str(int);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-e - 1) as usize));
            out.push_str(digits.trim_end_matches('0'));
        }
        out
    }
}

/// round(a × 10^k) as an integer.
fn scaled_digits(a: Num, k: i32) -> i128 {
    let s = if k >= 0 {
        a.times(Num::pow10(k as u32))
    } else {
        a.divided(Num::pow10((-k) as u32))
    };
    let h = s.hi.floor();
    let rest = (s.hi - h) + s.lo;
    h as i128 + rest.round() as i128
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Num {
        Num::parse_prefix(s).unwrap()
    }

    #[test]
    fn formats_like_long_double() {
        assert_eq!(n("10").divided(n("3")).format(), "3.33333333333333333");
        assert_eq!(n("7").divided(n("2")).format(), "3.5");
        assert_eq!(n("10").divided(n("5")).format(), "2");
        assert_eq!(n("0.1").plus(n("0.2")).format(), "0.3");
        assert_eq!(n("1.5").plus(n("1")).format(), "2.5");
        assert_eq!(n("-5").plus(n("2")).format(), "-3");
        assert_eq!(n("2147483647").format(), "2147483647");
        assert_eq!(n("1").divided(n("1000000")).format(), "1e-06");
        assert_eq!(
            n("123456789012345678901").format(),
            "1.23456789012345679e+20"
        );
        assert_eq!(n("0.001").format(), "0.001");
    }

    #[test]
    fn remainder_and_parse() {
        assert_eq!(n("10").modulo(n("4")).format(), "2");
        assert_eq!(n("-7").modulo(n("2")).format(), "-1");
        assert!(Num::parse_prefix("abc").is_none());
        assert_eq!(n("1.2.3").format(), "1.2");
    }
}

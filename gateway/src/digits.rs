//! Digit manipulation on the way out of a dial peer: the POTS tools network
//! engineers know (`digit-strip`, `forward-digits`, `prefix`), applied to every
//! peer here in one fixed order — strip, then forward, then prefix, then the
//! translation rules — so the number a peer receives can be worked out by hand
//! and is shown by `softswitch peers --explain`.
//!
//! Translation rules play the part of an IOS `voice translation-profile`: an
//! ordered list of regular expressions, the first that matches rewrites the
//! number (`$1` for a group, where IOS writes `\1`).

use crate::pattern::Pattern;

/// `forward_digits`: which of the called number's digits travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardDigits {
    /// The last N digits.
    Last(usize),
    /// Every digit, stripping nothing.
    All,
    /// Only the digits beyond what the pattern itself covered.
    Extra,
}

impl ForwardDigits {
    pub fn parse(word: &str) -> Option<ForwardDigits> {
        match word {
            "all" => Some(ForwardDigits::All),
            "extra" => Some(ForwardDigits::Extra),
            n => n.parse().ok().map(ForwardDigits::Last),
        }
    }
}

/// One translation rule: where `pattern` matches, the number becomes
/// `replace` (with `$1`… for the pattern's groups).
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: regex::Regex,
    pub replace: String,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.pattern.as_str() == other.pattern.as_str() && self.replace == other.replace
    }
}

impl Eq for Rule {}

/// Ordered rules; the first that matches applies, the rest are not tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    pub rules: Vec<Rule>,
}

impl Translation {
    /// Compiles `(pattern, replacement)` pairs; the error names the rule's index.
    pub fn compile(rules: &[(String, String)]) -> Result<Translation, (usize, regex::Error)> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, (p, r))| {
                regex::Regex::new(p)
                    .map(|pattern| Rule {
                        pattern,
                        replace: r.clone(),
                    })
                    .map_err(|e| (i, e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Translation { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number after the first matching rule, or None when none matched.
    pub fn apply(&self, number: &str) -> Option<String> {
        self.rules
            .iter()
            .find(|r| r.pattern.is_match(number))
            .map(|r| r.pattern.replace(number, r.replace.as_str()).into_owned())
    }
}

/// One peer's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigitRules {
    /// Drop the literal digits the pattern starts with (`9T` sends the number
    /// without its 9).
    pub digit_strip: bool,
    pub forward_digits: Option<ForwardDigits>,
    /// Put in front after the rest.
    pub prefix: String,
    /// The called number's translation, last.
    pub translate_called: Translation,
}

impl DigitRules {
    pub fn is_identity(&self) -> bool {
        !self.digit_strip
            && self.forward_digits.is_none()
            && self.prefix.is_empty()
            && self.translate_called.is_empty()
    }

    /// The number sent to the peer for `number`, which `pattern` matched, and
    /// the steps that made it (empty when nothing changed).
    pub fn apply(&self, pattern: &Pattern, number: &str) -> (String, Vec<String>) {
        let mut out = number.to_string();
        let mut steps = Vec::new();
        match self.forward_digits {
            Some(ForwardDigits::All) => {}
            Some(ForwardDigits::Extra) => {
                let covered = pattern.matches(number).map_or(0, |m| m.consumed);
                out = number.get(covered..).unwrap_or("").to_string();
                steps.push(format!("forward_digits extra: {out:?}"));
            }
            last => {
                if self.digit_strip {
                    let lit = pattern.literal_prefix();
                    if let Some(rest) = out.strip_prefix(lit.as_str())
                        && !lit.is_empty()
                    {
                        out = rest.to_string();
                        steps.push(format!("digit_strip {lit:?}: {out:?}"));
                    }
                }
                if let Some(ForwardDigits::Last(n)) = last
                    && out.len() > n
                {
                    out = out[out.len() - n..].to_string();
                    steps.push(format!("forward_digits {n}: {out:?}"));
                }
            }
        }
        if !self.prefix.is_empty() {
            out = format!("{}{out}", self.prefix);
            steps.push(format!("prefix {:?}: {out:?}", self.prefix));
        }
        if let Some(t) = self.translate_called.apply(&out) {
            out = t;
            steps.push(format!("translate_called: {out:?}"));
        }
        (out, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(rules: &DigitRules, pattern: &str, number: &str) -> String {
        rules.apply(&Pattern::parse(pattern).unwrap(), number).0
    }

    #[test]
    fn nothing_set_sends_the_number_as_dialled() {
        let r = DigitRules::default();
        assert!(r.is_identity());
        assert_eq!(sent(&r, "9T", "912125551234"), "912125551234");
        assert!(r.apply(&Pattern::parse("9T").unwrap(), "91").1.is_empty());
    }

    #[test]
    fn digit_strip_drops_the_literal_lead() {
        let r = DigitRules {
            digit_strip: true,
            ..DigitRules::default()
        };
        assert_eq!(sent(&r, "9T", "912125551234"), "12125551234");
        assert_eq!(sent(&r, "555....", "5551234"), "1234");
        assert_eq!(sent(&r, "[2-4]...", "2345"), "2345", "no literal lead");
    }

    #[test]
    fn forward_digits_keeps_the_last_n_all_or_the_extra() {
        let last4 = DigitRules {
            forward_digits: Some(ForwardDigits::Last(4)),
            ..DigitRules::default()
        };
        assert_eq!(sent(&last4, "1408555....", "14085551234"), "1234");
        assert_eq!(
            sent(&last4, "22.", "221"),
            "221",
            "shorter numbers pass whole"
        );
        let all = DigitRules {
            digit_strip: true,
            forward_digits: Some(ForwardDigits::All),
            ..DigitRules::default()
        };
        assert_eq!(sent(&all, "9T", "9123"), "9123", "all overrides the strip");
        let extra = DigitRules {
            forward_digits: Some(ForwardDigits::Extra),
            ..DigitRules::default()
        };
        assert_eq!(sent(&extra, "22.", "22123"), "23");
    }

    #[test]
    fn prefix_comes_after_strip_and_forward_and_every_step_is_explained() {
        let r = DigitRules {
            digit_strip: true,
            forward_digits: Some(ForwardDigits::Last(3)),
            prefix: "0044".into(),
            ..DigitRules::default()
        };
        let (out, steps) = r.apply(&Pattern::parse("9T").unwrap(), "912345");
        assert_eq!(out, "0044345");
        assert_eq!(
            steps,
            [
                "digit_strip \"9\": \"12345\"",
                "forward_digits 3: \"345\"",
                "prefix \"0044\": \"0044345\""
            ]
        );
    }

    #[test]
    fn translation_rules_apply_first_match_only_and_last() {
        let t = Translation::compile(&[
            ("^0044(.*)$".into(), "+44$1".into()),
            ("^00(.*)$".into(), "+$1".into()),
        ])
        .unwrap();
        assert_eq!(t.apply("00442071234567").as_deref(), Some("+442071234567"));
        assert_eq!(t.apply("0015551234").as_deref(), Some("+15551234"));
        assert_eq!(t.apply("2001"), None);
        let r = DigitRules {
            digit_strip: true,
            translate_called: t,
            ..DigitRules::default()
        };
        assert_eq!(sent(&r, "9T", "90044123"), "+44123");
        assert!(matches!(
            Translation::compile(&[("ok".into(), "".into()), ("(".into(), "".into())]),
            Err((1, _))
        ));
    }

    #[test]
    fn forward_digits_words() {
        assert_eq!(ForwardDigits::parse("all"), Some(ForwardDigits::All));
        assert_eq!(ForwardDigits::parse("extra"), Some(ForwardDigits::Extra));
        assert_eq!(ForwardDigits::parse("4"), Some(ForwardDigits::Last(4)));
        assert_eq!(ForwardDigits::parse("some"), None);
    }
}

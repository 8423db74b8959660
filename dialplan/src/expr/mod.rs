//! `$[...]` expressions (§10): tokens, a precedence parser that evaluates as it goes
//! (as the bison grammar does: both branches of `?::` are evaluated), and Asterisk's
//! value rules.

mod lexer;
mod number;
mod value;

pub use number::Num;

use lexer::{Tok, tokenize};
use value::Val;

use crate::subst::Resolver;

/// Evaluates expression text (already substituted) and formats the result (§10.4).
/// A syntax error gives `""` when it is at the first token and `"0"` otherwise (§10.5).
pub fn evaluate(text: &str, r: &mut dyn Resolver) -> String {
    let toks = tokenize(text);
    if toks.is_empty() {
        return String::new();
    }
    let mut p = Parser { toks, pos: 0, r };
    match p.expr() {
        Ok(v) if p.pos == p.toks.len() => v.into_string(),
        Ok(_) => {
            p.r.warn(format!("syntax error in expression '{text}'"));
            "0".into()
        }
        Err(at) => {
            p.r.warn(format!("syntax error in expression '{text}'"));
            if at == 0 { String::new() } else { "0".into() }
        }
    }
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    r: &'a mut dyn Resolver,
}

type Res = Result<Val, usize>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Res {
        // Level 2: `c ? a :: b`, left-associative (§10.2).
        let mut v = self.or()?;
        while self.eat(&Tok::Question) {
            let a = self.or()?;
            if !self.eat(&Tok::DoubleColon) {
                return Err(self.pos);
            }
            let b = self.or()?;
            v = if v.truthy_cond() { a } else { b };
        }
        Ok(v)
    }

    fn or(&mut self) -> Res {
        let mut v = self.and()?;
        while self.eat(&Tok::Or) {
            let b = self.and()?;
            v = if v.zero_or_empty() { b } else { v };
        }
        Ok(v)
    }

    fn and(&mut self) -> Res {
        let mut v = self.cmp()?;
        while self.eat(&Tok::And) {
            let b = self.cmp()?;
            v = if v.zero_or_empty() || b.zero_or_empty() {
                Val::Num(Num::ZERO)
            } else {
                v
            };
        }
        Ok(v)
    }

    fn cmp(&mut self) -> Res {
        let mut v = self.add()?;
        loop {
            let op = match self.peek() {
                Some(t @ (Tok::Eq | Tok::Ne | Tok::Lt | Tok::Gt | Tok::Le | Tok::Ge)) => t.clone(),
                _ => return Ok(v),
            };
            self.pos += 1;
            let b = self.add()?;
            v = value::compare(&op, v, b);
        }
    }

    fn add(&mut self) -> Res {
        let mut v = self.mul()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => Tok::Plus,
                Some(Tok::Minus) => Tok::Minus,
                _ => return Ok(v),
            };
            self.pos += 1;
            let b = self.mul()?;
            v = value::arith(&op, v, b, self.r);
        }
    }

    fn mul(&mut self) -> Res {
        let mut v = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(t @ (Tok::Mul | Tok::Div | Tok::Mod)) => t.clone(),
                _ => return Ok(v),
            };
            self.pos += 1;
            let b = self.unary()?;
            v = value::arith(&op, v, b, self.r);
        }
    }

    fn unary(&mut self) -> Res {
        if self.eat(&Tok::Minus) {
            let v = self.unary()?;
            return Ok(value::negate(v, self.r));
        }
        if self.eat(&Tok::Not) {
            let v = self.unary()?;
            return Ok(value::not(v));
        }
        self.colon()
    }

    fn colon(&mut self) -> Res {
        // `:`, `=~` and `~~` bind tighter than anything but parentheses (§10.2).
        let mut v = self.primary()?;
        loop {
            let op = match self.peek() {
                Some(t @ (Tok::Colon | Tok::RegexMatch | Tok::Concat)) => t.clone(),
                _ => return Ok(v),
            };
            self.pos += 1;
            let b = self.primary()?;
            v = match op {
                Tok::Concat => value::concat(v, b),
                Tok::Colon => value::regex_match(v, b, true, self.r),
                _ => value::regex_match(v, b, false, self.r),
            };
        }
    }

    fn primary(&mut self) -> Res {
        let at = self.pos;
        match self.toks.get(at).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let v = self.expr()?;
                if !self.eat(&Tok::RParen) {
                    return Err(self.pos);
                }
                Ok(v)
            }
            Some(Tok::Str(name)) if self.toks.get(at + 1) == Some(&Tok::LParen) => {
                self.pos += 2;
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(&Tok::Comma) {
                            continue;
                        }
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        return Err(self.pos);
                    }
                }
                Ok(value::call(&name, args, self.r))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Val::Str(s))
            }
            Some(Tok::Number(s)) => {
                self.pos += 1;
                Ok(Val::NumStr(s))
            }
            _ => Err(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Resolver for NoVars {
        fn variable(&mut self, _: &str) -> Option<String> {
            None
        }
        fn function(&mut self, name: &str, args: &str) -> Option<String> {
            (name == "LEN").then(|| args.len().to_string())
        }
    }

    fn ev(s: &str) -> String {
        evaluate(s, &mut NoVars)
    }

    #[test]
    fn precedence_and_conditional() {
        assert_eq!(ev("1 ? 2 :: 3 ? 4 :: 5"), "4");
        assert_eq!(ev("2 * 3 : 6"), "0");
        assert_eq!(ev("- 3 : 3"), "-1");
        assert_eq!(ev("LEN(abcd) * 2"), "8");
        assert_eq!(ev(""), "");
        assert_eq!(ev(" = 1"), "");
        assert_eq!(ev("1 +"), "0");
    }
}

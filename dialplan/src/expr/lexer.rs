//! Tokens of `$[...]` (§10.1, after `main/ast_expr2.fl`).

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Plus,
    Minus,
    Mul,
    Div,
    Mod,
    Question,
    DoubleColon,
    Colon,
    RegexMatch,
    Concat,
    Not,
    LParen,
    RParen,
    Comma,
    /// `[0-9]+` or `[0-9]+.[0-9]+`: a numeric string.
    Number(String),
    /// Anything else, quoted strings with their quotes.
    Str(String),
}

fn is_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '.' | '\'' | ';' | '\\' | '_' | '^' | '#' | '@' | '$' | '{' | '}' | '[' | ']'
        )
        || !c.is_ascii()
}

/// Splits expression text into tokens. Characters outside every token class become
/// one-character strings, which the parser then reports as a syntax error if misplaced.
pub(crate) fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let peek = |i: usize| chars.get(i).copied();
    while i < chars.len() {
        let c = chars[i];
        let next = peek(i + 1);
        let (tok, len) = match (c, next) {
            (' ' | '\t' | '\r' | '\n', _) => {
                i += 1;
                continue;
            }
            ('|', Some('|')) => (Tok::Or, 2),
            ('|', _) => (Tok::Or, 1),
            ('&', Some('&')) => (Tok::And, 2),
            ('&', _) => (Tok::And, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('=', Some('~')) => (Tok::RegexMatch, 2),
            ('=', _) => (Tok::Eq, 1),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('!', _) => (Tok::Not, 1),
            ('<', Some('=')) => (Tok::Le, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('>', _) => (Tok::Gt, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Mul, 1),
            ('/', _) => (Tok::Div, 1),
            ('%', _) => (Tok::Mod, 1),
            ('?', _) => (Tok::Question, 1),
            (':', Some(':')) => (Tok::DoubleColon, 2),
            (':', _) => (Tok::Colon, 1),
            ('~', Some('~')) => (Tok::Concat, 2),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('"', _) => {
                // No escapes; an unterminated quote runs to the end.
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '"')
                    .map(|p| i + 1 + p + 1)
                    .unwrap_or(chars.len());
                (Tok::Str(chars[i..end].iter().collect()), end - i)
            }
            _ if is_string_char(c) => {
                let run = chars[i..]
                    .iter()
                    .take_while(|&&x| is_string_char(x))
                    .count();
                let word: String = chars[i..i + run].iter().collect();
                // Longest match: a run that is exactly a number is a numeric string.
                if is_number(&word) {
                    (Tok::Number(word), run)
                } else {
                    (Tok::Str(word), run)
                }
            }
            _ => (Tok::Str(c.to_string()), 1),
        };
        out.push(tok);
        i += len;
    }
    out
}

fn is_number(w: &str) -> bool {
    let (int, frac) = match w.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (w, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(
            tokenize("1+2"),
            [Tok::Number("1".into()), Tok::Plus, Tok::Number("2".into())]
        );
        assert_eq!(
            tokenize("a-b"),
            [Tok::Str("a".into()), Tok::Minus, Tok::Str("b".into())]
        );
        assert_eq!(tokenize("1.2.3"), [Tok::Str("1.2.3".into())]);
        assert_eq!(tokenize("\"a b\""), [Tok::Str("\"a b\"".into())]);
        assert_eq!(
            tokenize("c ? a :: b"),
            [
                Tok::Str("c".into()),
                Tok::Question,
                Tok::Str("a".into()),
                Tok::DoubleColon,
                Tok::Str("b".into())
            ]
        );
        assert_eq!(tokenize("=~ ~~")[..], [Tok::RegexMatch, Tok::Concat]);
    }
}

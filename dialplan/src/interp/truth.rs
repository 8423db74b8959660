//! GotoIf's truth rule (§12.4, `main/pbx.c` `pbx_checkcondition()`): empty is false;
//! text that starts with an integer is that integer's truth; other text is true.

pub fn check_condition(cond: &str) -> bool {
    let t = cond.trim_start();
    if t.is_empty() {
        return false;
    }
    let b = t.as_bytes();
    let mut end = usize::from(matches!(b[0], b'-' | b'+'));
    let start = end;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    if end > start {
        return t[start..end].bytes().any(|d| d != b'0');
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_rule() {
        assert!(!check_condition(""));
        assert!(!check_condition("0"));
        assert!(!check_condition("0abc"));
        assert!(check_condition("-1"));
        assert!(check_condition("abc"));
        assert!(check_condition(" 7"));
        assert!(!check_condition("  "));
    }
}

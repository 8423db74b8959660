//! Text that remembers where each byte came from, so a diagnostic about a value that
//! went through comment removal, trimming and splitting still points at the right column.

use crate::diag::Pos;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PText {
    pub text: String,
    /// One entry per byte of `text`.
    pos: Vec<Pos>,
    /// Where an empty remainder points (just after the last byte).
    end: Pos,
}

impl PText {
    pub fn new(end: Pos) -> Self {
        PText {
            text: String::new(),
            pos: Vec::new(),
            end,
        }
    }

    pub fn push(&mut self, c: char, at: Pos) {
        self.text.push(c);
        for _ in 0..c.len_utf8() {
            self.pos.push(at);
        }
        self.end = Pos {
            col: at.col + 1,
            ..at
        };
    }

    pub fn append(&mut self, other: &PText) {
        self.text.push_str(&other.text);
        self.pos.extend_from_slice(&other.pos);
        self.end = other.end;
    }

    pub fn set_end(&mut self, end: Pos) {
        self.end = end;
    }

    /// Position of byte `i` (or of the end when `i` is past it).
    pub fn pos_at(&self, i: usize) -> Pos {
        self.pos.get(i).copied().unwrap_or(self.end)
    }

    pub fn start(&self) -> Pos {
        self.pos_at(0)
    }

    pub fn slice(&self, from: usize, to: usize) -> PText {
        let to = to.min(self.text.len());
        let from = from.min(to);
        PText {
            text: self.text[from..to].to_string(),
            pos: self.pos[from..to].to_vec(),
            end: if to < self.pos.len() {
                self.pos[to]
            } else {
                self.end
            },
        }
    }

    pub fn trim(&self) -> PText {
        let start = self.text.len() - self.text.trim_start().len();
        let end = self.text.trim_end().len();
        if start >= end {
            return PText::new(self.pos_at(start));
        }
        self.slice(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(col: u32) -> Pos {
        Pos {
            file: 0,
            line: 1,
            col,
        }
    }

    #[test]
    fn trim_keeps_columns() {
        let mut t = PText::new(p(1));
        for (i, c) in "  ab ".chars().enumerate() {
            t.push(c, p(i as u32 + 1));
        }
        let tr = t.trim();
        assert_eq!(tr.text, "ab");
        assert_eq!(tr.start().col, 3);
        assert_eq!(tr.slice(1, 2).start().col, 4);
    }
}

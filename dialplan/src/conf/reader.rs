//! The generic `.conf` reader (dialplan.md §2): comments, section headers with
//! templates and `(+)`, `#include`/`#tryinclude`, and `name = value` items. It knows
//! nothing about the dialplan; `loader` interprets the sections it returns.

use std::path::{Path, PathBuf};

use super::glob::expand_glob;
use super::text::PText;
use crate::diag::{Pos, Sink, SourceMap};

/// Asterisk skips longer lines (`main/config.c`).
const MAX_LINE: usize = 8191;
/// Asterisk's include nesting limit.
const MAX_INCLUDE_DEPTH: usize = 10;

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub name: String,
    pub name_pos: Pos,
    pub value: PText,
}

#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    pub pos: Pos,
    pub template: bool,
    pub items: Vec<Item>,
}

/// Everything read from a file tree. `fatal` is set when Asterisk would refuse the file.
#[derive(Debug, Default)]
pub(crate) struct ConfFile {
    pub sections: Vec<Section>,
    pub map: SourceMap,
    pub sink: Sink,
    pub fatal: bool,
}

struct Reader {
    out: ConfFile,
    base_dir: PathBuf,
    /// Canonical paths of the files being read, outermost first, for loop detection.
    stack: Vec<PathBuf>,
}

/// Reads `path` and everything it includes. Relative include names resolve against the
/// directory of `path` (the configuration directory, §2.2).
pub(crate) fn read_conf(path: &Path) -> ConfFile {
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut r = Reader {
        out: ConfFile::default(),
        base_dir,
        stack: Vec::new(),
    };
    let display = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            r.stack.push(canon);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let _ = r.read_text(&display, &text, None);
        }
        Err(e) => {
            r.out.sink.diags.push(crate::diag::Diagnostic {
                severity: crate::diag::Severity::Error,
                file: display,
                line: 0,
                col: 0,
                message: format!("cannot read dialplan file: {e}"),
                source_line: None,
            });
            r.out.fatal = true;
        }
    }
    r.out
}

/// Reads configuration text that is not on disk (tests, stdin). `#include` still
/// resolves against `base_dir`.
pub(crate) fn read_conf_text(name: &str, text: &str, base_dir: &Path) -> ConfFile {
    let mut r = Reader {
        out: ConfFile::default(),
        base_dir: base_dir.to_path_buf(),
        stack: Vec::new(),
    };
    let _ = r.read_text(name, text, None);
    r.out
}

impl Reader {
    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.out.sink.warn(&self.out.map, pos, msg);
    }

    fn fatal(&mut self, pos: Pos, msg: impl Into<String>) {
        self.out.sink.error(&self.out.map, pos, msg);
        self.out.fatal = true;
    }

    /// Reads one file's text. `current` is the section open in the including file:
    /// included text continues it (§2.2), but what the included file opens does not
    /// leak back to the includer.
    fn read_text(&mut self, name: &str, text: &str, current: Option<usize>) -> Result<(), ()> {
        let file = self.out.map.add(name.to_string(), text);
        let mut current = current;
        let mut depth = 0usize; // block comment nesting
        let mut pending: Option<PText> = None;
        let mut comment_start = Pos::default();

        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx as u32 + 1;
            let raw = if idx == 0 {
                raw.trim_start_matches('\u{feff}')
            } else {
                raw
            };
            let at = |col: u32| Pos {
                file,
                line: line_no,
                col,
            };
            if raw.len() > MAX_LINE {
                self.warn(
                    at(1),
                    format!("line longer than {MAX_LINE} bytes is skipped, as Asterisk does"),
                );
                continue;
            }
            let mut buf = pending.take().unwrap_or_else(|| PText::new(at(1)));
            let chars: Vec<(usize, char)> = raw.char_indices().collect();
            let bytes = raw.as_bytes();
            let mut i = 0;
            while i < chars.len() {
                let (b, c) = chars[i];
                let col = i as u32 + 1;
                let rest = &bytes[b..];
                if depth > 0 {
                    if rest.starts_with(b"--;") {
                        depth -= 1;
                        i += 3;
                    } else if rest.starts_with(b";--") && !rest.starts_with(b";---") {
                        depth += 1;
                        i += 3;
                    } else {
                        i += 1;
                    }
                    continue;
                }
                if c == '\\' && rest.get(1) == Some(&b';') {
                    buf.push(';', at(col + 1));
                    i += 2;
                    continue;
                }
                if c == ';' {
                    if rest.starts_with(b";--") && !rest.starts_with(b";---") {
                        depth = 1;
                        comment_start = at(col);
                        i += 3;
                        continue;
                    }
                    break;
                }
                buf.push(c, at(col));
                i += 1;
            }
            buf.set_end(at(chars.len() as u32 + 1));
            if depth > 0 {
                pending = Some(buf);
                continue;
            }
            let line = buf.trim();
            if line.text.is_empty() {
                continue;
            }
            current = self.process_line(&line, current, name)?;
        }
        if depth > 0 {
            self.warn(
                comment_start,
                "unterminated block comment ';--'; the rest of the file is ignored",
            );
        }
        Ok(())
    }

    fn process_line(
        &mut self,
        line: &PText,
        current: Option<usize>,
        file_name: &str,
    ) -> Result<Option<usize>, ()> {
        let t = line.text.as_str();
        if t.starts_with('[') {
            return self.section_header(line).map(Some);
        }
        if let Some(rest) = t.strip_prefix('#') {
            self.directive(line, rest, current, file_name)?;
            return Ok(current);
        }
        let line = if t.starts_with('\\') {
            line.slice(1, line.text.len())
        } else {
            line.clone()
        };
        let t = line.text.as_str();
        let Some(eq) = t.find('=') else {
            self.warn(
                line.start(),
                format!("no '=' in line '{t}'; ignored (expected 'name => value')"),
            );
            return Ok(current);
        };
        let Some(sec) = current else {
            self.fatal(
                line.start(),
                "item before any section: put a '[context]' header above it",
            );
            return Err(());
        };
        let name_part = line.slice(0, eq).trim();
        let mut value = line.slice(eq + 1, t.len());
        if value.text.starts_with('>') {
            value = value.slice(1, value.text.len());
        }
        let value = value.trim();
        let (name, append) = match name_part.text.strip_suffix('+') {
            Some(n) => (n.trim_end().to_string(), true),
            None => (name_part.text.clone(), false),
        };
        let items = &mut self.out.sections[sec].items;
        if append && let Some(prev) = items.iter_mut().rev().find(|it| it.name == name) {
            prev.value.append(&value);
            return Ok(current);
        }
        items.push(Item {
            name,
            name_pos: name_part.start(),
            value,
        });
        Ok(current)
    }

    fn section_header(&mut self, line: &PText) -> Result<usize, ()> {
        let t = line.text.as_str();
        let Some(close) = t.find(']') else {
            self.fatal(line.start(), "section header has no closing ']'");
            return Err(());
        };
        let name = t[1..close].to_string();
        let pos = line.pos_at(1);
        let after = &t[close + 1..];
        let mut template = false;
        let mut append = false;
        let mut bases = Vec::new();
        if let Some(opts) = after.strip_prefix('(') {
            let Some(end) = opts.find(')') else {
                self.fatal(
                    line.pos_at(close + 1),
                    "section options have no closing ')'",
                );
                return Err(());
            };
            let opt_start = close + 2;
            let mut off = 0;
            for opt in opts[..end].split(',') {
                let o = opt.trim();
                match o {
                    "!" => template = true,
                    "+" => append = true,
                    "" => {}
                    _ => bases.push((o.to_string(), line.pos_at(opt_start + off))),
                }
                off += opt.len() + 1;
            }
        }
        let sections = &self.out.sections;
        if append {
            if let Some(i) = sections
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(&name))
            {
                return Ok(i);
            }
            self.fatal(
                pos,
                format!("'[{name}](+)' adds to a section that does not exist yet"),
            );
            return Err(());
        }
        let mut items = Vec::new();
        for (base, bpos) in bases {
            match sections
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(&base))
            {
                Some(i) => items.extend(sections[i].items.iter().cloned()),
                None => {
                    self.fatal(
                        bpos,
                        format!("section '{name}' inherits from '{base}', which does not exist (define it above)"),
                    );
                    return Err(());
                }
            }
        }
        self.out.sections.push(Section {
            name,
            pos,
            template,
            items,
        });
        Ok(self.out.sections.len() - 1)
    }

    fn directive(
        &mut self,
        line: &PText,
        rest: &str,
        current: Option<usize>,
        _file_name: &str,
    ) -> Result<(), ()> {
        let word_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let word = &rest[..word_len];
        let arg = rest[word_len..].trim();
        let arg = strip_quotes(arg);
        match word.to_ascii_lowercase().as_str() {
            "include" => self.include(line, arg, current, true),
            "tryinclude" => self.include(line, arg, current, false),
            "exec" => {
                self.warn(
                    line.start(),
                    "#exec is not supported (it is disabled in Asterisk by default); ignored",
                );
                Ok(())
            }
            _ => {
                self.warn(
                    line.start(),
                    format!("unknown directive '#{word}'; ignored"),
                );
                Ok(())
            }
        }
    }

    fn include(
        &mut self,
        line: &PText,
        arg: &str,
        current: Option<usize>,
        required: bool,
    ) -> Result<(), ()> {
        let pos = line.start();
        if arg.is_empty() {
            self.warn(pos, "#include without a file name; ignored");
            return Ok(());
        }
        let target = if Path::new(arg).is_absolute() {
            PathBuf::from(arg)
        } else {
            self.base_dir.join(arg)
        };
        let files = if arg.contains(['*', '?', '[']) {
            expand_glob(&target)
        } else if target.exists() {
            vec![target.clone()]
        } else {
            Vec::new()
        };
        if files.is_empty() {
            if required {
                self.fatal(
                    pos,
                    format!("included file '{}' not found", target.display()),
                );
                return Err(());
            }
            return Ok(());
        }
        for f in files {
            if self.stack.len() > MAX_INCLUDE_DEPTH {
                self.fatal(
                    pos,
                    format!("includes nested more than {MAX_INCLUDE_DEPTH} levels deep"),
                );
                return Err(());
            }
            let canon = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if self.stack.contains(&canon) {
                let chain: Vec<String> = self
                    .stack
                    .iter()
                    .chain(std::iter::once(&canon))
                    .map(|p| p.display().to_string())
                    .collect();
                self.fatal(pos, format!("include loop: {}", chain.join(" -> ")));
                return Err(());
            }
            let text = match std::fs::read(&f) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    if required {
                        self.fatal(
                            pos,
                            format!("cannot read included file '{}': {e}", f.display()),
                        );
                        return Err(());
                    }
                    continue;
                }
            };
            self.stack.push(canon);
            let r = self.read_text(&f.display().to_string(), &text, current);
            self.stack.pop();
            r?;
        }
        Ok(())
    }
}

fn strip_quotes(s: &str) -> &str {
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('<') && s.ends_with('>')))
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> ConfFile {
        read_conf_text("t.conf", text, Path::new("."))
    }

    #[test]
    fn block_comment_joins_text() {
        let c = read("[a]\nexten => 1,1,NoOp(pre;-- x --;post)\n");
        assert_eq!(c.sections[0].items[0].value.text, "1,1,NoOp(prepost)");
    }

    #[test]
    fn multi_line_block_comment() {
        let c = read("[a]\nexten => 1,1,NoOp(a;-- x\n y --;b)\n");
        assert_eq!(c.sections[0].items[0].value.text, "1,1,NoOp(ab)");
    }

    #[test]
    fn escaped_semicolon_and_line_comment() {
        let c = read("[a]\nexten => 1,1,NoOp(a\\;b) ; comment\n");
        assert_eq!(c.sections[0].items[0].value.text, "1,1,NoOp(a;b)");
    }

    #[test]
    fn template_items_come_first() {
        let c = read("[t](!)\nexten => 1,1,NoOp(t)\n[c](t)\nexten => 2,1,NoOp(c)\n");
        assert!(c.sections[0].template);
        let vals: Vec<_> = c.sections[1].items.iter().map(|i| &i.value.text).collect();
        assert_eq!(vals, ["1,1,NoOp(t)", "2,1,NoOp(c)"]);
    }

    #[test]
    fn plus_appends_to_first_section() {
        let c = read("[A]\nx=1\n[b]\ny=2\n[a](+)\nz=3\n");
        assert_eq!(c.sections.len(), 2);
        assert_eq!(c.sections[0].items.len(), 2);
    }

    #[test]
    fn item_before_section_is_fatal() {
        let c = read("exten => 1,1,NoOp\n");
        assert!(c.fatal);
        assert_eq!(c.sink.diags[0].line, 1);
    }

    #[test]
    fn unterminated_header_is_fatal() {
        let c = read("[abc\n");
        assert!(c.fatal);
    }

    #[test]
    fn value_columns_survive() {
        let c = read("[a]\n  exten => 1,1,NoOp()\n");
        let it = &c.sections[0].items[0];
        assert_eq!(it.name_pos.col, 3);
        assert_eq!(it.value.start().col, 12);
    }
}

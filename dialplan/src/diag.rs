//! Diagnostics in the rustc shape: `file:line:col: error|warning: message`, then the
//! source line and a caret under the column (issue 3, "Authoring commands").

use std::fmt;

/// How bad a finding is. `check` exits non-zero when any `Error` is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A position in a source file. Lines and columns are 1-based; the column counts
/// characters, as editors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// One problem found while loading or linting a dialplan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Path of the file as the user named it (or as an include resolved it).
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// The offending source line, for the caret display.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// The one-line header without the source excerpt.
    pub fn header(&self) -> String {
        // Line 0 marks a fault of the file as a whole (unreadable, missing).
        if self.line == 0 {
            return format!("{}: {}: {}", self.file, self.severity, self.message);
        }
        format!(
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.severity, self.message
        )
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// Renders like rustc:
    ///
    /// ```text
    /// extensions.conf:3:16: error: unknown application 'Dail'
    ///     3 | exten => 100,1,Dail(SIP/100)
    ///       |                ^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header())?;
        if let Some(src) = &self.source_line {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len().max(4));
            writeln!(f, "{:>w$} | {}", num, src, w = pad.len())?;
            // Tabs are kept so the caret lines up in a terminal.
            let lead: String = src
                .chars()
                .take(self.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}^")?;
        }
        Ok(())
    }
}

/// The lines of every file read while loading, so diagnostics can quote them later
/// (lint runs after loading, on the finished plan).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    name: String,
    lines: Vec<String>,
}

impl SourceMap {
    pub(crate) fn add(&mut self, name: String, text: &str) -> u32 {
        let lines = text.lines().map(|l| l.to_string()).collect();
        self.files.push(SourceFile { name, lines });
        (self.files.len() - 1) as u32
    }

    /// The display name of file `id`.
    pub fn file_name(&self, id: u32) -> &str {
        self.files
            .get(id as usize)
            .map(|f| f.name.as_str())
            .unwrap_or("<unknown>")
    }

    fn line(&self, pos: Pos) -> Option<String> {
        let f = self.files.get(pos.file as usize)?;
        f.lines
            .get(pos.line.checked_sub(1)? as usize)
            .map(|l| l.trim_start_matches('\u{feff}').to_string())
    }

    /// Builds a diagnostic pointing at `pos`.
    pub(crate) fn diag(&self, severity: Severity, pos: Pos, message: String) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file_name(pos.file).to_string(),
            line: pos.line,
            col: pos.col.max(1),
            message,
            source_line: self.line(pos),
        }
    }
}

/// Collects diagnostics while a pass runs.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn warn(&mut self, map: &SourceMap, pos: Pos, msg: impl Into<String>) {
        self.diags
            .push(map.diag(Severity::Warning, pos, msg.into()));
    }
    pub fn error(&mut self, map: &SourceMap, pos: Pos, msg: impl Into<String>) {
        self.diags.push(map.diag(Severity::Error, pos, msg.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let mut map = SourceMap::default();
        let id = map.add("x.conf".into(), "[a]\nexten => 1,1,Dail(x)\n");
        let d = map.diag(
            Severity::Error,
            Pos {
                file: id,
                line: 2,
                col: 15,
            },
            "unknown application 'Dail'".into(),
        );
        let text = d.to_string();
        assert_eq!(
            text,
            "x.conf:2:15: error: unknown application 'Dail'\n   2 | exten => 1,1,Dail(x)\n     |               ^\n"
        );
    }
}

//! Plain-text tables for people: columns padded to their widest cell, two spaces apart.

use std::io::Write;

pub fn write<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    for r in rows {
        writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// What an inspection command prints of its rows: one JSON object per line with
/// `--json`, `empty` when there are none, else a table of `header` and each row's
/// `cells`.
pub fn print_rows<const N: usize>(
    rows: &[serde_json::Value],
    json: bool,
    empty: &str,
    header: [&str; N],
    cells: impl Fn(&serde_json::Value) -> [String; N],
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        for r in rows {
            writeln!(out, "{r}")?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        return writeln!(out, "{empty}");
    }
    let table: Vec<[String; N]> = rows.iter().map(cells).collect();
    write(&mut out, header, &table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads_columns_and_trims_line_ends() {
        let mut out = Vec::new();
        super::write(
            &mut out,
            ["A", "LONG HEADER"],
            &[["wide cell".into(), "x".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A          LONG HEADER\nwide cell  x\n"
        );
    }
}

//! The paper's own numbers (`data/paper_tables.csv`, a checked extraction:
//! table, row, column, value, note), kept in the binary so reports can put
//! them beside ours. Cells the text lost are absent, never filled in.

/// One printed cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub table: String,
    pub row: String,
    pub column: String,
    pub value: String,
    pub note: String,
}

const CSV: &str = include_str!("../../data/paper_tables.csv");

/// Every cell of the paper's tables.
pub fn cells() -> Vec<Cell> {
    CSV.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f = split_csv(l);
            (f.len() >= 4).then(|| Cell {
                table: f[0].clone(),
                row: f[1].clone(),
                column: f[2].clone(),
                value: f[3].clone(),
                note: f.get(4).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// The paper's value for `(table, row, column)`, if the text kept it.
pub fn value(table: &str, row: &str, column: &str) -> Option<String> {
    cells()
        .into_iter()
        .find(|c| c.table == table && c.row == row && c.column == column)
        .map(|c| c.value)
}

/// Fields of one CSV line (double quotes, `""` escapes).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_values_are_kept_and_lost_cells_stay_missing() {
        assert_eq!(value("1", "MNL", "Loc. Branch").as_deref(), Some("91.07"));
        assert_eq!(value("5", "PaW", "Average").as_deref(), Some("91.23"));
        assert_eq!(value("3", "SNet3", "Param.").as_deref(), Some("0.27M"));
        // Table 5's first block lost its Part-only row.
        assert_eq!(value("5", "Part-only", "Male"), None);
        assert!(value("5", "Part-only", "Young").is_some());
        assert_eq!(split_csv(r#"a,"b, c",d"#), vec!["a", "b, c", "d"]);
    }
}

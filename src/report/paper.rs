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
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(CSV.as_bytes())
        .records()
        .filter_map(Result::ok)
        .filter(|r| r.len() >= 4)
        .map(|r| Cell {
            table: r[0].to_string(),
            row: r[1].to_string(),
            column: r[2].to_string(),
            value: r[3].to_string(),
            note: r.get(4).unwrap_or_default().to_string(),
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
    }

    #[test]
    fn quoted_notes_keep_their_commas() {
        let c = cells()
            .into_iter()
            .find(|c| c.table == "2" && c.row == "MNL on crop" && c.column == "Loc. Branch")
            .unwrap();
        assert_eq!(c.value, "76.03");
        assert_eq!(c.note, "crop = CAM-estimated bird box, train and test");
    }
}

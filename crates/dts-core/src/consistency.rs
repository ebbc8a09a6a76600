//! Data consistency checks: what a job's `ConsistencyType` asks for, how one table compares, and
//! the report a check leaves behind (ErrorInfo, `dts job diff`, repair SQL).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::ConsistencyParams;

/// Which tables a check covers and how deeply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckScope {
    /// ConsistencyType 2: every table, row by row.
    Full,
    /// ConsistencyType 3: `rows_tables` % of the tables compared on `rows` % of their rows, a
    /// further `count_tables` % compared by row count only.
    Sampled { count_tables: u8, rows_tables: u8, rows: u8 },
    /// ConsistencyType 4: only these tables (found inconsistent before), row by row.
    Tables(Vec<(String, String)>),
}

impl CheckScope {
    /// The scope of a `ConsistencyType`; `None` when no check is asked for (1, 5, unset).
    pub fn of(consistency_type: Option<i64>, params: Option<&ConsistencyParams>) -> Option<CheckScope> {
        let pct = |v: Option<i64>, default: u8| v.map(|x| x.clamp(0, 100) as u8).unwrap_or(default);
        match consistency_type {
            Some(2) => Some(Self::Full),
            Some(3) => {
                let p = params.cloned().unwrap_or_default();
                Some(Self::Sampled {
                    count_tables: pct(p.tables_select_count, 100),
                    rows_tables: pct(p.tables_select_all, 10),
                    rows: pct(p.select_rows_per_table, 10),
                })
            }
            Some(4) => Some(Self::Tables(Vec::new())),
            _ => None,
        }
    }
}

/// How one table is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareOptions {
    /// Rows per compared chunk.
    pub chunk_rows: u64,
    /// Percent of the chunks compared (100: all).
    pub sample_percent: u8,
    /// Compare row counts only.
    pub count_only: bool,
    /// Replication is running: a key that differs is compared again after this window, as long
    /// as its source row keeps changing, at most `settle_rounds` times.
    pub settle_window: Option<Duration>,
    pub settle_rounds: u32,
    /// At most this many differing keys are kept per kind (the counts stay exact).
    pub keep_keys: usize,
    /// At most this many differing keys are held at once while a table is compared (settled
    /// and counted in batches of this size): memory follows this, not the number of
    /// differences.
    pub pending_keys: usize,
}

/// Differing rows kept in one job's report, over all its tables (the counts stay exact beyond
/// it, and the report says it is truncated).
pub const REPORT_ROWS_LIMIT: usize = 10_000;

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            chunk_rows: 100_000,
            sample_percent: 100,
            count_only: false,
            settle_window: None,
            settle_rounds: 5,
            keep_keys: 1000,
            pending_keys: 10_000,
        }
    }
}

/// How deeply a table was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Rows,
    Sample { percent: u8 },
    Count,
}

/// One differing row: its key as `col=value,...` (the row digest for keyless tables), the
/// columns that differ (for `different`), and a predicate that selects it on either server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    pub predicate: String,
}

/// The differences found in one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDiff {
    pub database: String,
    pub table: String,
    pub comparison: Comparison,
    pub source_rows: u64,
    pub destination_rows: u64,
    pub chunks: u64,
    pub chunks_compared: u64,
    pub chunks_differing: u64,
    /// Exact counts per kind; the row lists keep at most `keep_keys` each.
    pub missing_count: u64,
    pub extra_count: u64,
    pub different_count: u64,
    pub missing: Vec<DiffRow>,
    pub extra: Vec<DiffRow>,
    pub different: Vec<DiffRow>,
    /// Keys whose source row kept changing through every settle round (not reported as different).
    #[serde(default)]
    pub unsettled: Vec<String>,
    /// How many keys were unsettled (`unsettled` keeps at most `keep_keys`).
    #[serde(default)]
    pub unsettled_count: u64,
    /// The row lists hold fewer rows than the counts say (capped per table or per report).
    #[serde(default)]
    pub truncated: bool,
}

impl TableDiff {
    pub fn new(database: &str, table: &str, comparison: Comparison) -> Self {
        Self {
            database: database.into(),
            table: table.into(),
            comparison,
            source_rows: 0,
            destination_rows: 0,
            chunks: 0,
            chunks_compared: 0,
            chunks_differing: 0,
            missing_count: 0,
            extra_count: 0,
            different_count: 0,
            missing: Vec::new(),
            extra: Vec::new(),
            different: Vec::new(),
            unsettled: Vec::new(),
            unsettled_count: 0,
            truncated: false,
        }
    }

    /// Rows kept in the lists.
    pub fn kept_rows(&self) -> usize {
        self.missing.len() + self.extra.len() + self.different.len() + self.unsettled.len()
    }

    /// Keeps at most `limit` rows over the lists (missing first, then extra, different,
    /// unsettled), marking the diff truncated when any went; the counts are not touched.
    pub fn keep_at_most(&mut self, limit: usize) {
        fn keep<T>(list: &mut Vec<T>, room: &mut usize) -> bool {
            let kept = list.len().min(*room);
            *room -= kept;
            let cut = kept < list.len();
            list.truncate(kept);
            cut
        }
        let mut room = limit;
        let cut = keep(&mut self.missing, &mut room)
            | keep(&mut self.extra, &mut room)
            | keep(&mut self.different, &mut room)
            | keep(&mut self.unsettled, &mut room);
        self.truncated |= cut;
    }

    /// Row-level comparisons decide by the differing keys (row counts are read at slightly
    /// different moments and drift while replication runs); count-only ones by the counts.
    pub fn consistent(&self) -> bool {
        match self.comparison {
            Comparison::Count => self.source_rows == self.destination_rows,
            _ => self.missing_count == 0 && self.extra_count == 0 && self.different_count == 0,
        }
    }

    /// `` `db`.`t` (3 missing, 1 extra, 2 different) ``.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in
            [(self.missing_count, "missing"), (self.extra_count, "extra"), (self.different_count, "different")]
        {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            parts
                .push(format!("{} rows on the source, {} on the destination", self.source_rows, self.destination_rows));
        }
        format!("`{}`.`{}` ({})", self.database, self.table, parts.join(", "))
    }
}

/// What a consistency check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// `full`, `sampled` or `recheck`.
    pub mode: String,
    pub started: String,
    pub finished: String,
    pub tables: Vec<TableDiff>,
    /// Statements that would make the destination equal the source at the time of the check.
    #[serde(default)]
    pub repair_sql: Vec<String>,
    /// Some table's row lists (or the repair statements) were capped; the counts are exact.
    #[serde(default)]
    pub truncated: bool,
}

impl ConsistencyReport {
    pub fn consistent(&self) -> bool {
        self.tables.iter().all(TableDiff::consistent)
    }

    pub fn inconsistent_tables(&self) -> Vec<(String, String)> {
        self.tables.iter().filter(|t| !t.consistent()).map(|t| (t.database.clone(), t.table.clone())).collect()
    }

    /// One line for ErrorInfo: which tables differ and how.
    pub fn failure_summary(&self) -> String {
        let bad: Vec<String> = self.tables.iter().filter(|t| !t.consistent()).map(TableDiff::summary).collect();
        format!(
            "consistency check: {} of {} tables inconsistent: {}; `dts job diff` lists the rows",
            bad.len(),
            self.tables.len(),
            bad.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_types_map_to_scopes_with_the_api_defaults() {
        assert_eq!(CheckScope::of(Some(2), None), Some(CheckScope::Full));
        assert_eq!(CheckScope::of(Some(1), None), None);
        assert_eq!(CheckScope::of(None, None), None);
        let p = ConsistencyParams {
            select_rows_per_table: Some(50),
            tables_select_all: Some(20),
            tables_select_count: None,
        };
        assert_eq!(
            CheckScope::of(Some(3), Some(&p)),
            Some(CheckScope::Sampled { count_tables: 100, rows_tables: 20, rows: 50 })
        );
    }

    #[test]
    fn capping_a_diff_keeps_its_counts_and_says_it_is_truncated() {
        let row = |k: &str| DiffRow { key: k.into(), columns: Vec::new(), predicate: String::new() };
        let mut d = TableDiff::new("shop", "t", Comparison::Rows);
        d.missing = vec![row("1"), row("2")];
        d.different = vec![row("3"), row("4")];
        (d.missing_count, d.different_count) = (7, 9);
        d.keep_at_most(4);
        assert!(!d.truncated, "everything fits");
        d.keep_at_most(3);
        assert_eq!((d.missing.len(), d.different.len(), d.kept_rows()), (2, 1, 3));
        assert_eq!((d.missing_count, d.different_count), (7, 9));
        assert!(d.truncated);
    }

    #[test]
    fn a_table_with_a_different_row_is_inconsistent_and_named_in_the_summary() {
        let mut d = TableDiff::new("shop", "t", Comparison::Rows);
        d.source_rows = 3;
        d.destination_rows = 3;
        assert!(d.consistent());
        d.different_count = 1;
        let report = ConsistencyReport { tables: vec![d], ..Default::default() };
        assert!(!report.consistent());
        assert!(report.failure_summary().contains("`shop`.`t` (1 different)"));
    }
}

//! Precheck reports: one item per check, each saying what was expected and what was found.

use serde::{Deserialize, Serialize};

/// The outcome of one precheck item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    Passed,
    /// Does not block the job, but the operator should know (e.g. a table without a primary key).
    Warning {
        detail: String,
    },
    /// Blocks the job until fixed.
    Failed {
        expected: String,
        found: String,
    },
}

/// One precheck item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    /// Stable identifier, e.g. `source_connectivity`.
    pub name: String,
    /// Human description of what is checked.
    pub description: String,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    /// How to fix it, when failed or warned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CheckItem {
    pub fn passed(name: &str, description: &str) -> Self {
        Self { name: name.into(), description: description.into(), outcome: CheckOutcome::Passed, hint: None }
    }

    pub fn failed(
        name: &str,
        description: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            outcome: CheckOutcome::Failed { expected: expected.into(), found: found.into() },
            hint,
        }
    }

    pub fn warning(name: &str, description: &str, detail: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            outcome: CheckOutcome::Warning { detail: detail.into() },
            hint,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.outcome, CheckOutcome::Failed { .. })
    }
}

/// Every item of one precheck run; a precheck never stops at the first failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub items: Vec<CheckItem>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        !self.items.iter().any(CheckItem::is_failed)
    }

    /// One line per failed item, for `ErrorMessage`: `name: expected X, found Y`.
    pub fn failure_summary(&self) -> String {
        self.items
            .iter()
            .filter_map(|i| match &i.outcome {
                CheckOutcome::Failed { expected, found } => {
                    Some(format!("{}: expected {expected}, found {found}", i.name))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

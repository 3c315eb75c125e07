//! The one inventory loader of the front ends (CLI commands, run, console,
//! backups, verify): load, register the secrets with the redactor, and the
//! lines a person reads when it fails. Prints nothing itself.

use std::path::Path;

use super::{Inventory, InventoryError};
use crate::redact::Redactor;

/// What a front end says when no inventory was named or found.
pub const NO_INVENTORY: &str = "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')";

/// The inventory at `path`, its secrets registered with `redactor`; the
/// warnings of that registration come back for the caller to show where
/// its output goes (stderr, the log).
pub fn open(path: &Path, redactor: &Redactor) -> Result<(Inventory, Vec<String>), InventoryError> {
    let inv = Inventory::load(path)?;
    let warnings = inv.register_secrets(redactor);
    Ok((inv, warnings))
}

impl InventoryError {
    /// The lines to show for a failed load: every problem (`file:line:col`),
    /// then, when `summary` is given, `error: N problem(s) in PATH{summary}`;
    /// an unreadable file is one line `error: ...`.
    pub fn report(&self, path: &Path, summary: Option<&str>) -> Vec<String> {
        match self {
            InventoryError::Invalid(d) => {
                let mut v: Vec<String> = d.0.iter().map(|x| x.to_string()).collect();
                if let Some(s) = summary {
                    v.push(format!(
                        "error: {} problem(s) in {}{s}",
                        d.0.len(),
                        path.display()
                    ));
                }
                v
            }
            e => vec![format!("error: {e}")],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_inventory_is_reported_with_its_problems_and_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("inv.toml");
        std::fs::write(&p, "[[host]]\nname = \"h\"\ntransport = \"nope\"\n").unwrap();
        let e = open(&p, &Redactor::new()).unwrap_err();
        let lines = e.report(&p, Some("; run 'lifeline check'"));
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines[0].contains("inv.toml:3:"), "{lines:?}");
        assert_eq!(
            lines.last().unwrap(),
            &format!(
                "error: {} problem(s) in {}; run 'lifeline check'",
                lines.len() - 1,
                p.display()
            )
        );
        assert_eq!(e.report(&p, None).len(), lines.len() - 1);
        let gone = dir.path().join("gone.toml");
        let e = open(&gone, &Redactor::new()).unwrap_err();
        assert_eq!(e.report(&gone, Some("x")).len(), 1);
        assert!(e.report(&gone, None)[0].starts_with("error: cannot read inventory"));
    }
}

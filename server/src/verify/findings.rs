//! What verification found: findings with a severity, skipped checks, the verdict and the
//! report that carries them.

use serde::{Deserialize, Serialize};

use super::photo::PhotoFacts;
use super::track::TrackSummary;

/// How much a finding weighs on the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A fact for the reviewer; does not hold up the order.
    Info,
    /// A person must look before the enterprise confirms.
    Review,
    /// The evidence cannot be accepted as it is.
    Reject,
}

/// The outcome of verification: the worst severity among the findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No finding above `info`.
    Passed,
    /// At least one `review` finding and no `reject` finding.
    NeedsReview,
    /// At least one `reject` finding.
    Rejected,
}

impl Verdict {
    /// The verdict for a set of findings: any reject → rejected, else any review → needs
    /// review, else passed.
    pub fn of(findings: &[Finding]) -> Self {
        match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Reject) => Self::Rejected,
            Some(Severity::Review) => Self::NeedsReview,
            Some(Severity::Info) | None => Self::Passed,
        }
    }
}

/// One thing a check noticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable snake_case identifier, for example `photo_outside_site`.
    pub code: String,
    /// How much it weighs on the verdict.
    pub severity: Severity,
    /// A sentence for a person, with the numbers that led to it.
    pub message: String,
    /// The photo id, or `"track"`, when the finding is about one item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// A check that did not run because an input it needs was absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCheck {
    /// Stable snake_case name of the check, for example `geofence`.
    pub check: String,
    /// Why it did not run.
    pub reason: String,
    /// The photo ids (or `"track"`) it was skipped for, when it applies per item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

/// The facts read from one submitted photo, under the id it was submitted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoReport {
    /// The id given in [`PhotoInput`](super::PhotoInput).
    pub id: String,
    /// What [`analyze_photo`](super::analyze_photo) read from the bytes.
    #[serde(flatten)]
    pub facts: PhotoFacts,
}

/// Everything [`verify`](super::verify) found, ready to store or print as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The worst severity among `findings`.
    pub verdict: Verdict,
    /// What the checks noticed, photos first, then the track, reuse and requirements.
    pub findings: Vec<Finding>,
    /// The facts of each photo, in submission order.
    pub photos: Vec<PhotoReport>,
    /// A summary of the trajectory, when one was submitted.
    pub track: Option<TrackSummary>,
    /// Checks that could not run, and why.
    pub skipped: Vec<SkippedCheck>,
}

impl Report {
    /// Whether any finding has this code.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The findings with this code.
    pub fn with_code<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.code == code)
    }

    /// Whether a check with this name was skipped.
    pub fn skipped(&self, check: &str) -> bool {
        self.skipped.iter().any(|s| s.check == check)
    }
}

/// Collects findings and skipped checks while the checks run.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    list: Vec<Finding>,
    skipped: Vec<SkippedCheck>,
}

impl Findings {
    pub(crate) fn add(&mut self, severity: Severity, code: &str, item: Option<&str>, msg: String) {
        self.list.push(Finding {
            code: code.to_owned(),
            severity,
            message: msg,
            item: item.map(str::to_owned),
        });
    }

    pub(crate) fn reject(&mut self, code: &str, item: Option<&str>, message: String) {
        self.add(Severity::Reject, code, item, message);
    }

    pub(crate) fn review(&mut self, code: &str, item: Option<&str>, message: String) {
        self.add(Severity::Review, code, item, message);
    }

    pub(crate) fn info(&mut self, code: &str, item: Option<&str>, message: String) {
        self.add(Severity::Info, code, item, message);
    }

    /// Records a check that did not run at all.
    pub(crate) fn skip(&mut self, check: &str, reason: &str) {
        self.skip_for(check, None, reason);
    }

    /// Records a check that did not run for one item; items skipped for the same reason share
    /// one entry.
    pub(crate) fn skip_for(&mut self, check: &str, item: Option<&str>, reason: &str) {
        let same = |s: &SkippedCheck| s.check == check && s.reason == reason;
        let index = match self.skipped.iter().position(same) {
            Some(index) => index,
            None => {
                self.skipped.push(SkippedCheck {
                    check: check.to_owned(),
                    reason: reason.to_owned(),
                    items: Vec::new(),
                });
                self.skipped.len() - 1
            }
        };

        if let Some(item) = item {
            self.skipped[index].items.push(item.to_owned());
        }
    }

    pub(crate) fn into_report(
        self,
        photos: Vec<PhotoReport>,
        track: Option<TrackSummary>,
    ) -> Report {
        Report {
            verdict: Verdict::of(&self.list),
            findings: self.list,
            photos,
            track,
            skipped: self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            code: "x".into(),
            severity,
            message: String::new(),
            item: None,
        }
    }

    #[test]
    fn verdict_is_the_worst_severity() {
        assert_eq!(Verdict::of(&[]), Verdict::Passed);
        assert_eq!(Verdict::of(&[finding(Severity::Info)]), Verdict::Passed);

        let mixed = [finding(Severity::Info), finding(Severity::Review)];
        assert_eq!(Verdict::of(&mixed), Verdict::NeedsReview);

        let worst = [finding(Severity::Reject), finding(Severity::Review)];
        assert_eq!(Verdict::of(&worst), Verdict::Rejected);
    }

    #[test]
    fn verdict_serializes_in_snake_case() {
        let json = serde_json::to_string(&Verdict::NeedsReview).unwrap();

        assert_eq!(json, "\"needs_review\"");
    }

    #[test]
    fn skips_for_the_same_reason_share_an_entry() {
        let mut out = Findings::default();
        out.skip_for("device_fix", Some("a"), "no fix");
        out.skip_for("device_fix", Some("b"), "no fix");
        out.skip("reuse", "nothing known");

        let report = out.into_report(Vec::new(), None);
        assert_eq!(report.skipped.len(), 2);
        assert_eq!(report.skipped[0].items, ["a", "b"]);
    }
}

//! Who may do what: the kinds of account, the operator's teams, and the permissions each
//! one carries.
//!
//! An account has one [`Role`]. Operators also belong to one or more [`Team`]s — the staff
//! functions of the standard (4.1.2): review, risk, finance, legal, welfare, customer
//! support, regulator liaison, and the administrators who manage accounts and storage.
//! Enterprise accounts act for an organisation, either as its administrator (who confirms
//! work, which pays, and manages the organisation's staff) or as staff. Regulators read and
//! never write (they also read what the platform reported to them). Handlers ask for a
//! [`Permission`], never for a role, so that what a team may
//! do is decided in one table ([`Caller::can`]).

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// The kind of account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A field worker: records evidence for their own orders.
    Worker,
    /// An enterprise's administrator or staff: publishes tasks, assigns workers, confirms
    /// completion.
    Enterprise,
    /// Platform staff, in one or more teams.
    Operator,
    /// The supervising authority's reader: sees work and evidence, changes nothing.
    Regulator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Enterprise => "enterprise",
            Role::Operator => "operator",
            Role::Regulator => "regulator",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "worker" => Some(Role::Worker),
            "enterprise" => Some(Role::Enterprise),
            "operator" => Some(Role::Operator),
            "regulator" => Some(Role::Regulator),
            _ => None,
        }
    }
}

/// An operator team (4.1.2 of the standard).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Team {
    /// Reviews people, enterprises and evidence (the standard's verification team).
    Reviewer,
    /// Monitors and samples enterprises and work.
    Risk,
    /// Settles pay and tax.
    Finance,
    /// Handles legal requests; may read the audit trail and reveal personal data.
    Legal,
    /// Welfare and insurance channels.
    Welfare,
    /// Customer service: answers workers and enterprises.
    Support,
    /// Reports to the regulator's platform. The command line takes `regulator-liaison` and
    /// the API's spelling `regulator_liaison` alike.
    #[value(alias = "regulator_liaison")]
    RegulatorLiaison,
    /// Manages accounts, teams and storage; reads the audit trail.
    Administrator,
}

impl Team {
    pub const ALL: [Team; 8] = [
        Team::Reviewer,
        Team::Risk,
        Team::Finance,
        Team::Legal,
        Team::Welfare,
        Team::Support,
        Team::RegulatorLiaison,
        Team::Administrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Team::Reviewer => "reviewer",
            Team::Risk => "risk",
            Team::Finance => "finance",
            Team::Legal => "legal",
            Team::Welfare => "welfare",
            Team::Support => "support",
            Team::RegulatorLiaison => "regulator_liaison",
            Team::Administrator => "administrator",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Team::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Something a handler needs the caller to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Sync evidence documents and upload media for one's own orders (workers).
    RecordEvidence,
    /// Draft, submit, cancel tasks, assign workers, accept applications and cancel orders for
    /// one's organisation (enterprise admin and staff).
    PublishTasks,
    /// Apply for published tasks, declaring one's skills, qualifications and health (workers).
    ApplyForTasks,
    /// Dispute completion of one's organisation's orders (enterprise admin and staff).
    DisputeWork,
    /// Confirm completion, which lets the order be settled and paid (enterprise admin).
    ConfirmWork,
    /// Add staff accounts to one's organisation (enterprise admin).
    ManageStaff,
    /// Read every task, order, evidence and settlement, with personal data masked
    /// (operator teams other than administrators, and regulators).
    ReadAllWork,
    /// Decide on evidence that verification flagged (reviewers).
    ReviewEvidence,
    /// See the worker and enterprise application queues and decide on them (reviewers).
    ReviewApplications,
    /// Review submitted tasks (authenticity checks, publish or refuse), void tasks, accept
    /// workers' applications and cancel orders on an enterprise's behalf (reviewers).
    ReviewTasks,
    /// Read one personal field in plaintext, with a reason (reviewers, legal).
    RevealPersonalData,
    /// Create, suspend and reinstate accounts, and set operators' teams (administrators).
    ManageAccounts,
    /// Read the audit trail (administrators, legal).
    ReadAudit,
    /// See where copies of media stand and how restore drills went (administrators).
    ManageStorage,
    /// Work the enterprise risk queue and the quarterly screening, and draw the daily samples
    /// by hand (risk team).
    RiskChecks,
    /// Call back, survey or visit sampled workers and orders and record the result
    /// (reviewer and support teams).
    CallBacks,
    /// List and read the exports handed to the regulator, masked (regulator liaison team,
    /// regulators).
    ReadRegulatorExports,
    /// Make an export for the regulator (regulator liaison team).
    MakeRegulatorExports,
    /// Deregister an account on an authority's order (administrators, support team).
    OrderDeregistration,
    /// Bill enterprises for paid work and reverse invoices with red-letter invoices
    /// (finance).
    IssueInvoices,
    /// Record deposits the bank reported into enterprises' escrow accounts (finance).
    RecordDeposits,
    /// Read an escrow balance, deposits and movements: an enterprise's own (administrators
    /// and staff), any enterprise's (finance).
    ReadEscrow,
    /// Confirm or dispute an order's statement as one of its three parties: the worker, the
    /// enterprise (administrators and staff) or the platform (finance and reviewer teams).
    ConfirmStatements,
    /// Resolve a disputed statement by reissuing or voiding it (finance).
    ResolveStatements,
    /// Choose one's payout cycle and see one's own payouts (workers).
    ReceivePay,
    /// Run the payout batch and see every payout (finance).
    ManagePayouts,
}

impl Permission {
    pub const ALL: [Permission; 26] = [
        Permission::RecordEvidence,
        Permission::PublishTasks,
        Permission::ApplyForTasks,
        Permission::DisputeWork,
        Permission::ConfirmWork,
        Permission::ManageStaff,
        Permission::ReadAllWork,
        Permission::ReviewEvidence,
        Permission::ReviewApplications,
        Permission::ReviewTasks,
        Permission::RevealPersonalData,
        Permission::ManageAccounts,
        Permission::ReadAudit,
        Permission::ManageStorage,
        Permission::RiskChecks,
        Permission::CallBacks,
        Permission::ReadRegulatorExports,
        Permission::MakeRegulatorExports,
        Permission::OrderDeregistration,
        Permission::IssueInvoices,
        Permission::RecordDeposits,
        Permission::ReadEscrow,
        Permission::ConfirmStatements,
        Permission::ResolveStatements,
        Permission::ReceivePay,
        Permission::ManagePayouts,
    ];

    /// The operator teams that hold this permission; empty for the ones no team holds.
    pub fn teams(self) -> &'static [Team] {
        use Team::*;
        match self {
            Permission::ReadAllWork => &[
                Reviewer,
                Risk,
                Finance,
                Legal,
                Welfare,
                Support,
                RegulatorLiaison,
            ],
            Permission::ReviewEvidence
            | Permission::ReviewApplications
            | Permission::ReviewTasks => &[Reviewer],
            Permission::RevealPersonalData => &[Reviewer, Legal],
            Permission::ManageAccounts | Permission::ManageStorage => &[Administrator],
            Permission::ReadAudit => &[Administrator, Legal],
            Permission::RiskChecks => &[Risk],
            Permission::CallBacks => &[Reviewer, Support],
            Permission::ReadRegulatorExports | Permission::MakeRegulatorExports => {
                &[RegulatorLiaison]
            }
            Permission::OrderDeregistration => &[Administrator, Support],
            Permission::IssueInvoices => &[Finance],
            Permission::RecordDeposits | Permission::ResolveStatements => &[Finance],
            Permission::ReadEscrow => &[Finance],
            Permission::ConfirmStatements => &[Finance, Reviewer],
            Permission::ManagePayouts => &[Finance],
            Permission::RecordEvidence
            | Permission::PublishTasks
            | Permission::ApplyForTasks
            | Permission::DisputeWork
            | Permission::ConfirmWork
            | Permission::ManageStaff
            | Permission::ReceivePay => &[],
        }
    }

    /// The 403 a caller without this permission gets.
    pub fn refusal(self) -> ApiError {
        ApiError::forbidden(self.describe())
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::RecordEvidence => "recording evidence is for workers",
            Permission::PublishTasks => "publishing tasks is for enterprise accounts",
            Permission::ApplyForTasks => "applying for tasks is for workers, from their phone",
            Permission::DisputeWork => "disputing completion is for the order's enterprise",
            Permission::ConfirmWork => {
                "confirming completion is for the enterprise's administrator"
            }
            Permission::ManageStaff => "managing staff is for the enterprise's administrator",
            Permission::ReadAllWork => "reading other people's work is for operator teams",
            Permission::ReviewEvidence => "reviewing evidence is for the reviewer team",
            Permission::ReviewApplications => "reviewing applications is for the reviewer team",
            Permission::ReviewTasks => "reviewing tasks is for the reviewer team",
            Permission::RevealPersonalData => {
                "revealing personal data is for the reviewer and legal teams"
            }
            Permission::ManageAccounts => "managing accounts is for administrators",
            Permission::ReadAudit => "the audit trail is for administrators and the legal team",
            Permission::ManageStorage => "storage is for administrators",
            Permission::RiskChecks => "risk reviews and screenings are for the risk team",
            Permission::CallBacks => "call-backs are for the reviewer and support teams",
            Permission::ReadRegulatorExports => {
                "regulator exports are for the regulator liaison team and regulators"
            }
            Permission::MakeRegulatorExports => {
                "making regulator exports is for the regulator liaison team"
            }
            Permission::OrderDeregistration => {
                "deregistering someone else's account is for administrators and support"
            }
            Permission::IssueInvoices => "invoicing is for the finance team",
            Permission::RecordDeposits => "recording escrow deposits is for the finance team",
            Permission::ReadEscrow => {
                "an escrow account is for its enterprise and the finance team"
            }
            Permission::ConfirmStatements => {
                "a statement is confirmed by its worker, its enterprise and the platform's \
                 finance or reviewer team"
            }
            Permission::ResolveStatements => {
                "resolving disputed statements is for the finance team"
            }
            Permission::ReceivePay => "payout cycles and one's own payouts are for workers",
            Permission::ManagePayouts => "running and reading every payout is for finance",
        }
    }
}

/// What an account does besides its role: operator teams, or the enterprise duty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Duties {
    /// The operator's teams (empty for other roles).
    pub teams: Vec<Team>,
    /// Whether an enterprise account is its organisation's administrator.
    pub enterprise_admin: bool,
}

impl Duties {
    /// Reads the stored form: comma-separated team names, or `admin`/`staff`.
    pub fn parse(role: Role, stored: &str) -> ApiResult<Self> {
        let mut duties = Duties::default();
        for name in stored.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match (role, name) {
                (Role::Enterprise, "admin") => duties.enterprise_admin = true,
                (Role::Enterprise, "staff") => {}
                (Role::Operator, team) => {
                    let team = Team::parse(team)
                        .ok_or_else(|| ApiError::internal("unknown team in database"))?;
                    duties.teams.push(team);
                }
                _ => return Err(ApiError::internal("unknown duty in database")),
            }
        }
        duties.teams.sort();
        duties.teams.dedup();
        Ok(duties)
    }

    /// The stored form.
    pub fn store(&self, role: Role) -> String {
        match role {
            Role::Operator => {
                let names: Vec<_> = self.teams.iter().map(|t| t.as_str()).collect();
                names.join(",")
            }
            Role::Enterprise if self.enterprise_admin => "admin".into(),
            Role::Enterprise => "staff".into(),
            Role::Worker | Role::Regulator => String::new(),
        }
    }
}

/// What a caller's reading of tasks and orders is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkScope<'a> {
    /// Everything (operator teams that read work, regulators).
    All,
    /// One organisation's tasks and orders.
    Organisation(&'a str),
    /// One worker's orders.
    Worker(&'a str),
    /// Nothing: the caller's duties do not include reading work.
    Nothing,
}

/// The authenticated account behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub role: Role,
    pub duties: Duties,
    /// The enterprise an enterprise account acts for (its administrator's account id); the
    /// account's own id for other roles.
    pub organisation_id: String,
    /// Whether the token is only good for setting up two-factor login.
    pub setup_only: bool,
    /// The client's address, for the audit trail, when the server knows it.
    pub address: Option<String>,
}

impl Caller {
    /// Whether the caller holds a permission.
    pub fn can(&self, permission: Permission) -> bool {
        match self.role {
            Role::Worker => matches!(
                permission,
                Permission::RecordEvidence
                    | Permission::ApplyForTasks
                    | Permission::ConfirmStatements
                    | Permission::ReceivePay
            ),
            Role::Enterprise => match permission {
                Permission::PublishTasks
                | Permission::DisputeWork
                | Permission::ReadEscrow
                | Permission::ConfirmStatements => true,
                Permission::ConfirmWork | Permission::ManageStaff => self.duties.enterprise_admin,
                _ => false,
            },
            Role::Operator => permission
                .teams()
                .iter()
                .any(|t| self.duties.teams.contains(t)),
            Role::Regulator => matches!(
                permission,
                Permission::ReadAllWork | Permission::ReadRegulatorExports
            ),
        }
    }

    /// Refuses callers without the permission: 403 with a sentence naming who may.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(permission.refusal())
        }
    }

    /// Every permission the caller holds, for `GET /me`.
    pub fn permissions(&self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.can(*p))
            .collect()
    }

    /// Which tasks and orders the caller may read.
    pub fn work_scope(&self) -> WorkScope<'_> {
        match self.role {
            Role::Worker => WorkScope::Worker(&self.account_id),
            Role::Enterprise => WorkScope::Organisation(&self.organisation_id),
            Role::Operator | Role::Regulator if self.can(Permission::ReadAllWork) => WorkScope::All,
            Role::Operator | Role::Regulator => WorkScope::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(teams: &[Team]) -> Caller {
        Caller {
            account_id: "op".into(),
            role: Role::Operator,
            duties: Duties {
                teams: teams.to_vec(),
                enterprise_admin: false,
            },
            organisation_id: "op".into(),
            setup_only: false,
            address: None,
        }
    }

    #[test]
    fn each_team_holds_only_its_permissions() {
        let admin = operator(&[Team::Administrator]);
        assert!(admin.can(Permission::ManageAccounts));
        assert!(!admin.can(Permission::ReviewEvidence));
        assert_eq!(admin.work_scope(), WorkScope::Nothing);

        let reviewer = operator(&[Team::Reviewer]);
        assert!(reviewer.can(Permission::ReviewEvidence));
        assert!(!reviewer.can(Permission::ManageAccounts));
        assert!(!reviewer.can(Permission::ReadAudit));
        assert_eq!(reviewer.work_scope(), WorkScope::All);

        let finance = operator(&[Team::Finance]);
        assert!(!finance.can(Permission::RevealPersonalData));
        assert!(finance.can(Permission::ReadAllWork));

        let both = operator(&[Team::Legal, Team::Administrator]);
        assert!(both.can(Permission::ReadAudit) && both.can(Permission::RevealPersonalData));
        assert!(operator(&[]).permissions().is_empty());
    }

    #[test]
    fn enterprise_staff_cannot_confirm_and_regulators_only_read() {
        let mut staff = operator(&[]);
        staff.role = Role::Enterprise;
        staff.organisation_id = "acme".into();
        assert!(staff.can(Permission::PublishTasks));
        assert!(!staff.can(Permission::ConfirmWork));
        assert_eq!(staff.work_scope(), WorkScope::Organisation("acme"));
        staff.duties.enterprise_admin = true;
        assert!(staff.can(Permission::ConfirmWork) && staff.can(Permission::ManageStaff));

        let mut regulator = operator(&[]);
        regulator.role = Role::Regulator;
        assert_eq!(
            regulator.permissions(),
            vec![Permission::ReadAllWork, Permission::ReadRegulatorExports]
        );
    }

    #[test]
    fn money_is_moved_by_finance_and_statements_confirmed_by_their_three_parties() {
        let finance = operator(&[Team::Finance]);
        assert!(finance.can(Permission::RecordDeposits));
        assert!(finance.can(Permission::ResolveStatements));
        assert!(finance.can(Permission::ConfirmStatements));
        let reviewer = operator(&[Team::Reviewer]);
        assert!(reviewer.can(Permission::ConfirmStatements));
        assert!(!reviewer.can(Permission::RecordDeposits));
        assert!(!reviewer.can(Permission::ResolveStatements));
        assert!(!operator(&[Team::Support]).can(Permission::ConfirmStatements));

        let mut worker = operator(&[]);
        worker.role = Role::Worker;
        assert_eq!(
            worker.permissions(),
            vec![
                Permission::RecordEvidence,
                Permission::ApplyForTasks,
                Permission::ConfirmStatements,
                Permission::ReceivePay,
            ]
        );
        let mut staff = operator(&[]);
        staff.role = Role::Enterprise;
        assert!(staff.can(Permission::ReadEscrow) && staff.can(Permission::ConfirmStatements));
        assert!(!staff.can(Permission::RecordDeposits));
    }

    #[test]
    fn duties_round_trip_and_refuse_unknown_names() {
        let stored = "regulator_liaison,reviewer";
        let duties = Duties::parse(Role::Operator, stored).unwrap();
        assert_eq!(duties.teams, vec![Team::Reviewer, Team::RegulatorLiaison]);
        assert_eq!(duties.store(Role::Operator), "reviewer,regulator_liaison");
        assert!(Duties::parse(Role::Operator, "janitor").is_err());
        assert!(Duties::parse(Role::Worker, "admin").is_err());
        let admin = Duties::parse(Role::Enterprise, "admin").unwrap();
        assert!(admin.enterprise_admin);
        assert_eq!(admin.store(Role::Enterprise), "admin");
    }
}

//! Real-name verification of workers (requirement 5.1.4): the provider interface and a
//! **sandbox** provider.
//!
//! # This is a sandbox
//!
//! The standard requires name + ID number + bank card (+ phone) "four-element" verification
//! and a face comparison with liveness, through a licensed provider. No licensed provider is
//! reachable from this project, so this module offers:
//!
//! - [`RealNameProvider`], the interface the platform calls. A licensed provider plugs in by
//!   implementing it in its own module (an HTTP client for the provider's API, which signs
//!   requests, verifies the signatures of the provider's callbacks, and turns each callback
//!   into a [`Callback`]); the platform then holds an `Arc<dyn RealNameProvider>` chosen by
//!   configuration and never needs to know which provider it talks to.
//! - [`SandboxRealNameProvider`], a stand-in that behaves like a real provider's sandbox
//!   environment: it answers after a random latency, times out, is sometimes unavailable,
//!   answers face checks asynchronously and sometimes delivers the same callback twice. Its
//!   results are **not** verifications: they carry `provider: "sandbox"`
//!   ([`VerificationResult::is_sandbox`]), its tickets start with `sandbox-`, its rejection
//!   codes with `sandbox_`, and its log lines name the provider `sandbox`. A deployment that
//!   onboards real workers must refuse a provider whose [`RealNameProvider::is_sandbox`] is
//!   true.
//!
//! # Deterministic sandbox identities
//!
//! Like the test data published with real providers' sandboxes, these inputs give fixed
//! answers, so the platform's own tests can exercise every branch. Anything else that is well
//! formed is a [`Verdict::Match`].
//!
//! | Input                                                       | Answer                         |
//! |-------------------------------------------------------------|--------------------------------|
//! | ID number whose sequence digits (positions 15–17) are `999` | `Mismatch` on `name`           |
//! | ID number whose sequence digits (positions 15–17) are `998` | `Mismatch` on `id_number`      |
//! | Name containing `测试不符`                                  | `Mismatch` on `name`           |
//! | Bank card ending in `0000`                                  | `Mismatch` on `bank_card`      |
//! | Phone ending in `0000`                                      | `Mismatch` on `phone`          |
//! | Face image hash starting with `0000` (liveness passes)      | `Mismatch` on `face`           |
//! | Bank card ending in `9999` (issuer does not take part)      | `Unverifiable`                 |
//! | Face image hash starting with `ffff` (liveness fails)       | `Unverifiable`, liveness false |
//!
//! Mismatches combine: every element that does not match is listed once, in the order name,
//! ID number, bank card, phone, face. `Unverifiable` wins over `Mismatch`, as with real
//! providers, which cannot compare what they could not check.
//!
//! Malformed input is [`ProviderError::Rejected`], as a real provider rejects it before
//! checking anything: an empty name, an ID number that is not 17 digits and a digit or `X`
//! with a correct check character (GB 11643), a bank card that is not 15–19 digits, a phone
//! that is not 11 digits starting with `1`, a face hash that is not 64 hexadecimal characters,
//! or an empty request ID.
//!
//! # Behaviour of the sandbox
//!
//! Every submission draws its fate from the sandbox's random generator, seeded by
//! [`SandboxConfig::seed`] (the same seed and the same order of calls give the same latencies,
//! timeouts, tickets and duplicates):
//!
//! - it answers after a latency drawn uniformly from [`SandboxConfig::latency_ms`];
//! - at [`SandboxConfig::unavailable_rate`] it answers [`ProviderError::Unavailable`];
//! - at [`SandboxConfig::timeout_rate`], or when the drawn latency reaches
//!   [`SandboxConfig::timeout_ms`], the caller waits `timeout_ms` and gets
//!   [`ProviderError::Timeout`]. As over a real network, a timed-out request may still have
//!   been processed (one time in two): retrying with the **same request ID** then returns the
//!   recorded answer instead of checking (and charging) twice;
//! - with [`SandboxConfig::async_face_check`] and a face hash, it answers
//!   [`Submission::Pending`] and delivers the result later on the callback channel
//!   ([`RealNameProvider::take_callbacks`]); at [`SandboxConfig::duplicate_callback_rate`] it
//!   delivers the same callback a second time (same ticket, `delivery_attempt` 2), as real
//!   providers do when they retry a callback they think was lost. The platform applies each
//!   ticket once with a [`Deduplicator`].
//!
//! A request ID is an idempotency key: submitting it again with the same content returns the
//! first answer (same ticket, no second callback); with different content it is rejected.
//!
//! Personal data never appears in `Debug` output, error messages or log lines: requests print
//! masked, and log lines carry only the provider name, the request ID, the ticket and the kind
//! of verdict. Request IDs must therefore be opaque (a UUID), never derived from the person.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::identity::{mask_id_number, mask_name, mask_phone};

/// The provider name of the sandbox, in results, tickets, codes and log lines.
pub const SANDBOX_PROVIDER: &str = "sandbox";

/// How many callbacks wait in the channel before delivery blocks.
const CALLBACK_CAPACITY: usize = 1024;

/// A future returned by [`RealNameProvider`] methods: boxed, so the trait works as
/// `dyn RealNameProvider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One person's elements to verify, sent to a provider.
///
/// `Debug` masks every personal field; there is no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationRequest {
    /// The platform's idempotency key: opaque (a UUID), never derived from the person.
    pub request_id: String,
    /// The name on the ID card.
    pub name: String,
    /// The 18-character resident ID number.
    pub id_number: String,
    /// The payout bank card number.
    pub bank_card: String,
    /// The phone number reserved with the bank, for four-element verification.
    pub phone: Option<String>,
    /// SHA-256 (hex) of the face image captured with liveness; the image itself goes to the
    /// provider's capture SDK, not through this request.
    pub face_image_sha256: Option<String>,
}

impl fmt::Debug for VerificationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let face = self.face_image_sha256.as_ref().map(|_| "<present>");
        f.debug_struct("VerificationRequest")
            .field("request_id", &self.request_id)
            .field("name", &mask_name(&self.name))
            .field("id_number", &mask_id_number(&self.id_number))
            .field("bank_card", &mask_card_tail(&self.bank_card))
            .field("phone", &self.phone.as_deref().map(mask_phone))
            .field("face_image_sha256", &face)
            .finish()
    }
}

/// Masks a bank card down to its last 4 digits: `6228480402564890018` → `***************0018`.
/// A number of fewer than 8 digits is hidden entirely.
fn mask_card_tail(card: &str) -> String {
    let digits: Vec<char> = card.chars().filter(|c| !c.is_whitespace()).collect();
    let shown = if digits.len() >= 8 { 4 } else { 0 };
    let hidden = digits.len().saturating_sub(shown).max(1);
    let mut out: String = std::iter::repeat_n('*', hidden).collect();
    out.extend(&digits[digits.len() - shown..]);
    out
}

/// One element of a real-name verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    /// The name does not belong to the ID number.
    Name,
    /// The ID number is unknown to the authority.
    IdNumber,
    /// The bank card does not belong to the person.
    BankCard,
    /// The phone is not the one reserved with the bank.
    Phone,
    /// The face does not match the ID photo.
    Face,
}

impl Element {
    /// The stable name: `name`, `id_number`, `bank_card`, `phone` or `face`.
    pub fn as_str(self) -> &'static str {
        match self {
            Element::Name => "name",
            Element::IdNumber => "id_number",
            Element::BankCard => "bank_card",
            Element::Phone => "phone",
            Element::Face => "face",
        }
    }
}

/// A provider's answer about one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every submitted element matches.
    Match,
    /// These elements do not match (each once, in [`Element`] order).
    Mismatch {
        /// The elements that did not match.
        fields: Vec<Element>,
    },
    /// The provider could not check (card issuer not taking part, liveness failed, ...).
    Unverifiable {
        /// Why, in words free of personal data.
        reason: String,
    },
}

impl Verdict {
    /// `match`, `mismatch` or `unverifiable`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Match => "match",
            Verdict::Mismatch { .. } => "mismatch",
            Verdict::Unverifiable { .. } => "unverifiable",
        }
    }
}

/// The outcome of one verification. Holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationResult {
    /// The request's idempotency key.
    pub request_id: String,
    /// Which provider answered: [`SANDBOX_PROVIDER`] for the sandbox.
    pub provider: String,
    /// The answer.
    pub verdict: Verdict,
    /// When the provider checked, in milliseconds since the Unix epoch.
    pub checked_at_ms: i64,
    /// Whether the liveness check passed; `None` when no face was checked.
    pub liveness_passed: Option<bool>,
}

impl VerificationResult {
    /// Whether the sandbox produced this result: it then verifies nobody.
    pub fn is_sandbox(&self) -> bool {
        self.provider == SANDBOX_PROVIDER
    }
}

/// A provider's first answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// The result, at once (four-element checks).
    Completed(VerificationResult),
    /// The result will arrive as a [`Callback`] carrying this ticket (face checks).
    Pending {
        /// The provider's reference of the check.
        ticket: String,
    },
}

/// A result delivered asynchronously by the provider.
///
/// Providers retry callbacks, so the same ticket can arrive more than once: apply it through
/// a [`Deduplicator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The ticket of [`Submission::Pending`].
    pub ticket: String,
    /// The result; its `request_id` also identifies the submission, for a ticket the
    /// platform never saw (the submission timed out).
    pub result: VerificationResult,
    /// 1 for the first delivery, 2 and up for the provider's retries.
    pub delivery_attempt: u32,
}

/// Why a provider gave no answer. Messages never contain personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer in time. The request may have been processed: retry with the same request ID.
    #[error("the real-name provider did not answer in time")]
    Timeout,
    /// The provider is down or overloaded: retry later with the same request ID.
    #[error("the real-name provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request; retrying it unchanged will not help.
    #[error("the real-name provider rejected the request: {code}: {message}")]
    Rejected {
        /// The provider's own code.
        code: String,
        /// The provider's explanation, free of personal data.
        message: String,
    },
}

impl ProviderError {
    /// A stable machine-readable code: `realname_timeout`, `realname_unavailable` or
    /// `realname_rejected`.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Timeout => "realname_timeout",
            ProviderError::Unavailable(_) => "realname_unavailable",
            ProviderError::Rejected { .. } => "realname_rejected",
        }
    }

    /// Whether submitting again (with the same request ID) may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ProviderError::Rejected { .. })
    }

    fn rejected(code: &str, message: &str) -> Self {
        ProviderError::Rejected {
            code: code.to_string(),
            message: message.to_string(),
        }
    }
}

/// A real-name verification provider: the sandbox here, a licensed provider in production.
///
/// The trait is dyn-compatible so the platform can hold an `Arc<dyn RealNameProvider>`
/// chosen by configuration; [`submit`](RealNameProvider::submit) therefore returns a boxed
/// future rather than being an `async fn` (which would make the trait generic-only). One
/// allocation per verification is nothing next to a network call.
pub trait RealNameProvider: Send + Sync + fmt::Debug {
    /// The provider's name, stored in every [`VerificationResult`].
    fn name(&self) -> &'static str;

    /// Whether this provider is a sandbox that verifies nobody.
    fn is_sandbox(&self) -> bool;

    /// Submits a verification. Retrying after [`ProviderError::Timeout`] or
    /// [`ProviderError::Unavailable`] must reuse the same `request_id`.
    fn submit<'a>(
        &'a self,
        request: &'a VerificationRequest,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>>;

    /// The channel of asynchronous results, taken once by the platform's callback handler;
    /// `None` once taken.
    fn take_callbacks(&self) -> Option<mpsc::Receiver<Callback>>;
}

/// Applies each callback once: remembers the tickets already processed.
///
/// This one remembers them in memory; the platform persists them in its database (a unique
/// key on provider and ticket, inserted in the same transaction that applies the result), so
/// a duplicate arriving after a restart is recognised too.
#[derive(Debug, Default)]
pub struct Deduplicator {
    seen: Mutex<HashSet<(String, String)>>,
}

impl Deduplicator {
    /// An empty deduplicator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the callback's ticket; `true` if it was not seen before, so the callback must
    /// be applied, `false` for a duplicate to acknowledge and ignore.
    pub fn first_delivery(&self, callback: &Callback) -> bool {
        let key = (callback.result.provider.clone(), callback.ticket.clone());
        lock(&self.seen).insert(key)
    }

    /// How many distinct tickets were recorded.
    pub fn len(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Whether no ticket was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the sandbox behaves (`[realname.sandbox]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Inclusive range of the answer latency, in milliseconds.
    pub latency_ms: (u64, u64),
    /// The caller's deadline, in milliseconds: a timed-out submission returns after it.
    pub timeout_ms: u64,
    /// Fraction of submissions (0 to 1) that time out.
    pub timeout_rate: f64,
    /// Fraction of submissions (0 to 1) answered with "unavailable".
    pub unavailable_rate: f64,
    /// Fraction of callbacks (0 to 1) delivered twice.
    pub duplicate_callback_rate: f64,
    /// Whether face checks answer asynchronously through a callback.
    pub async_face_check: bool,
    /// Seed of the random generator; `None` seeds from the operating system.
    pub seed: Option<u64>,
}

impl Default for SandboxConfig {
    /// Resembles a real provider: 200–800 ms, a 3 s deadline, a few failures, asynchronous
    /// face checks and one callback in ten delivered twice.
    fn default() -> Self {
        SandboxConfig {
            latency_ms: (200, 800),
            timeout_ms: 3_000,
            timeout_rate: 0.02,
            unavailable_rate: 0.01,
            duplicate_callback_rate: 0.1,
            async_face_check: true,
            seed: None,
        }
    }
}

/// Why a [`SandboxConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxConfigError {
    /// The latency range has its minimum above its maximum.
    #[error("sandbox latency range is empty: minimum above maximum")]
    LatencyRange,
    /// A rate is not a number from 0 to 1.
    #[error("sandbox {0} must be a number from 0 to 1")]
    Rate(&'static str),
}

/// What the random generator decided for one submission. Every submission draws all of it,
/// whatever happens, so a seed gives the same sequence whatever the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    latency_ms: u64,
    unavailable: bool,
    timed_out: bool,
    processed_despite_timeout: bool,
    ticket: String,
    callback_delay_ms: u64,
    duplicate: bool,
    duplicate_delay_ms: u64,
}

/// What the sandbox remembers of a request ID.
#[derive(Debug, Clone)]
struct Recorded {
    fingerprint: [u8; 32],
    submission: Submission,
}

/// A **sandbox** real-name provider: it verifies nobody. See the [module](self) docs for its
/// behaviour and deterministic identities.
pub struct SandboxRealNameProvider {
    config: SandboxConfig,
    rng: Mutex<StdRng>,
    recorded: Mutex<HashMap<String, Recorded>>,
    sender: mpsc::Sender<Callback>,
    receiver: Mutex<Option<mpsc::Receiver<Callback>>>,
}

impl fmt::Debug for SandboxRealNameProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxRealNameProvider")
            .field("provider", &SANDBOX_PROVIDER)
            .field("config", &self.config)
            .field("recorded_requests", &lock(&self.recorded).len())
            .finish_non_exhaustive()
    }
}

impl SandboxRealNameProvider {
    /// A sandbox behaving as `config` says.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxConfigError> {
        if config.latency_ms.0 > config.latency_ms.1 {
            return Err(SandboxConfigError::LatencyRange);
        }
        for (name, rate) in [
            ("timeout_rate", config.timeout_rate),
            ("unavailable_rate", config.unavailable_rate),
            ("duplicate_callback_rate", config.duplicate_callback_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SandboxConfigError::Rate(name));
            }
        }
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let (sender, receiver) = mpsc::channel(CALLBACK_CAPACITY);
        Ok(SandboxRealNameProvider {
            config,
            rng: Mutex::new(rng),
            recorded: Mutex::new(HashMap::new()),
            sender,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Draws the fate of the next submission.
    fn plan(&self) -> Plan {
        let (min, max) = self.config.latency_ms;
        let mut rng = lock(&self.rng);
        let latency_ms = rng.random_range(min..=max);
        let unavailable = rng.random::<f64>() < self.config.unavailable_rate;
        let timed_out = rng.random::<f64>() < self.config.timeout_rate;
        let processed_despite_timeout = rng.random::<bool>();
        let ticket = format!(
            "{SANDBOX_PROVIDER}-{}",
            hex::encode(rng.random::<[u8; 16]>())
        );
        let callback_delay_ms = rng.random_range(min..=max);
        let duplicate = rng.random::<f64>() < self.config.duplicate_callback_rate;
        let duplicate_delay_ms = rng.random_range(min..=max);
        Plan {
            latency_ms,
            unavailable,
            timed_out: timed_out || latency_ms >= self.config.timeout_ms,
            processed_despite_timeout,
            ticket,
            callback_delay_ms,
            duplicate,
            duplicate_delay_ms,
        }
    }

    /// Carries out one submission as `plan` decided.
    async fn run(
        &self,
        request: &VerificationRequest,
        plan: Plan,
    ) -> Result<Submission, ProviderError> {
        let request_id = request.request_id.as_str();
        if plan.unavailable {
            tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
            tracing::warn!(
                provider = SANDBOX_PROVIDER,
                request_id,
                "sandbox unavailable"
            );
            let message = "sandbox: service temporarily unavailable (simulated)";
            return Err(ProviderError::Unavailable(message.to_string()));
        }
        if plan.timed_out {
            tokio::time::sleep(Duration::from_millis(self.config.timeout_ms)).await;
            if plan.processed_despite_timeout {
                // The answer was lost on the way back: the request is recorded all the same.
                let _ = self.process(request, &plan);
            }
            tracing::warn!(
                provider = SANDBOX_PROVIDER,
                request_id,
                processed = plan.processed_despite_timeout,
                "sandbox real-name verification timed out"
            );
            return Err(ProviderError::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
        self.process(request, &plan)
    }

    /// Validates, checks and records a request, or returns the answer recorded for its ID;
    /// schedules the callbacks of a new asynchronous check.
    fn process(
        &self,
        request: &VerificationRequest,
        plan: &Plan,
    ) -> Result<Submission, ProviderError> {
        let request_id = request.request_id.as_str();
        validate(request).inspect_err(|error| {
            tracing::info!(
                provider = SANDBOX_PROVIDER,
                request_id,
                code = error.code(),
                "sandbox rejected a real-name verification"
            );
        })?;
        let fingerprint = fingerprint(request);
        // One lock from look-up to insertion: two concurrent submissions of the same ID are
        // checked once.
        let mut recorded = lock(&self.recorded);
        if let Some(previous) = recorded.get(request_id) {
            if previous.fingerprint != fingerprint {
                return Err(ProviderError::rejected(
                    "sandbox_request_id_conflict",
                    "this request ID was already used for different data",
                ));
            }
            tracing::info!(
                provider = SANDBOX_PROVIDER,
                request_id,
                "sandbox replayed a recorded real-name answer"
            );
            return Ok(previous.submission.clone());
        }
        let (verdict, liveness_passed) = sandbox_verdict(request);
        let result = VerificationResult {
            request_id: request_id.to_string(),
            provider: SANDBOX_PROVIDER.to_string(),
            verdict,
            checked_at_ms: crate::now_ms(),
            liveness_passed,
        };
        let submission = if self.config.async_face_check && request.face_image_sha256.is_some() {
            self.schedule_callbacks(&plan.ticket, result, plan);
            tracing::info!(
                provider = SANDBOX_PROVIDER,
                request_id,
                ticket = %plan.ticket,
                "sandbox real-name verification pending"
            );
            Submission::Pending {
                ticket: plan.ticket.clone(),
            }
        } else {
            tracing::info!(
                provider = SANDBOX_PROVIDER,
                request_id,
                verdict = result.verdict.kind(),
                "sandbox real-name verification answered"
            );
            Submission::Completed(result)
        };
        let entry = Recorded {
            fingerprint,
            submission: submission.clone(),
        };
        recorded.insert(request_id.to_string(), entry);
        Ok(submission)
    }

    /// Delivers the callback of `ticket` after the planned delay, and again if planned.
    fn schedule_callbacks(&self, ticket: &str, result: VerificationResult, plan: &Plan) {
        let sender = self.sender.clone();
        let first = Callback {
            ticket: ticket.to_string(),
            result,
            delivery_attempt: 1,
        };
        let delays = (plan.callback_delay_ms, plan.duplicate_delay_ms);
        let duplicate = plan.duplicate;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delays.0)).await;
            let second = Callback {
                delivery_attempt: 2,
                ..first.clone()
            };
            deliver(&sender, first).await;
            if duplicate {
                tokio::time::sleep(Duration::from_millis(delays.1)).await;
                deliver(&sender, second).await;
            }
        });
    }
}

/// Sends one callback, logging it.
async fn deliver(sender: &mpsc::Sender<Callback>, callback: Callback) {
    let ticket = callback.ticket.clone();
    let attempt = callback.delivery_attempt;
    let verdict = callback.result.verdict.kind();
    match sender.send(callback).await {
        Ok(()) => tracing::info!(
            provider = SANDBOX_PROVIDER,
            %ticket,
            attempt,
            verdict,
            "sandbox delivered a real-name callback"
        ),
        Err(_) => tracing::warn!(
            provider = SANDBOX_PROVIDER,
            %ticket,
            attempt,
            "sandbox real-name callback dropped: nobody listens"
        ),
    }
}

impl RealNameProvider for SandboxRealNameProvider {
    fn name(&self) -> &'static str {
        SANDBOX_PROVIDER
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    fn submit<'a>(
        &'a self,
        request: &'a VerificationRequest,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>> {
        Box::pin(async move {
            let plan = self.plan();
            self.run(request, plan).await
        })
    }

    fn take_callbacks(&self) -> Option<mpsc::Receiver<Callback>> {
        lock(&self.receiver).take()
    }
}

/// Rejects malformed input as a real provider does, with messages free of the values.
fn validate(request: &VerificationRequest) -> Result<(), ProviderError> {
    if request.request_id.trim().is_empty() {
        return Err(ProviderError::rejected(
            "sandbox_invalid_request_id",
            "the request ID is empty",
        ));
    }
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(ProviderError::rejected(
            "sandbox_invalid_name",
            "the name must have 1 to 50 characters",
        ));
    }
    if !id_number_ok(&request.id_number) {
        return Err(ProviderError::rejected(
            "sandbox_invalid_id_number",
            "the ID number must be 18 characters with a correct check character",
        ));
    }
    let card = request.bank_card.as_bytes();
    if !(15..=19).contains(&card.len()) || !card.iter().all(u8::is_ascii_digit) {
        return Err(ProviderError::rejected(
            "sandbox_invalid_bank_card",
            "the bank card number must have 15 to 19 digits",
        ));
    }
    if let Some(phone) = &request.phone {
        let digits = phone.as_bytes();
        if digits.len() != 11 || digits[0] != b'1' || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ProviderError::rejected(
                "sandbox_invalid_phone",
                "the phone number must be 11 digits starting with 1",
            ));
        }
    }
    if let Some(hash) = &request.face_image_sha256
        && (hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ProviderError::rejected(
            "sandbox_invalid_face_hash",
            "the face image hash must be 64 hexadecimal characters",
        ));
    }
    Ok(())
}

/// Whether `id` is 17 digits and a check character that matches them (GB 11643, ISO 7064
/// MOD 11-2). An upper- or lower-case `X` stands for 10.
fn id_number_ok(id: &str) -> bool {
    let bytes = id.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let check = match bytes[17] {
        b'0'..=b'9' => u32::from(bytes[17] - b'0'),
        b'X' | b'x' => 10,
        _ => return false,
    };
    id_check_value(&bytes[..17]) == check
}

/// The check value (0–10) of 17 ID digits: weights 2^(17-i) mod 11, then (12 - sum) mod 11.
fn id_check_value(digits: &[u8]) -> u32 {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for digit in digits.iter().rev() {
        weight = weight * 2 % 11;
        sum += u32::from(digit - b'0') * weight;
    }
    (12 - sum % 11) % 11
}

/// A digest of the request's content, to recognise the reuse of a request ID for other data
/// without keeping the data.
fn fingerprint(request: &VerificationRequest) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let fields = [
        Some(request.name.trim()),
        Some(request.id_number.as_str()),
        Some(request.bank_card.as_str()),
        request.phone.as_deref(),
        request.face_image_sha256.as_deref(),
    ];
    for field in fields {
        match field {
            Some(value) => {
                hasher.update([1u8]);
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(value.to_ascii_lowercase().as_bytes());
            }
            None => hasher.update([0u8]),
        }
    }
    hasher.finalize().into()
}

/// The sandbox's answer for a valid request: the deterministic identities of the module docs.
fn sandbox_verdict(request: &VerificationRequest) -> (Verdict, Option<bool>) {
    let face = request
        .face_image_sha256
        .as_deref()
        .map(str::to_ascii_lowercase);
    let liveness_passed = face.as_deref().map(|hash| !hash.starts_with("ffff"));
    if liveness_passed == Some(false) {
        let reason = "sandbox: liveness check failed, face not compared".to_string();
        return (Verdict::Unverifiable { reason }, liveness_passed);
    }
    if request.bank_card.ends_with("9999") {
        let reason = "sandbox: the card issuer does not take part in verification".to_string();
        return (Verdict::Unverifiable { reason }, liveness_passed);
    }
    let sequence = request.id_number.get(14..17).unwrap_or_default();
    let mut fields = Vec::new();
    if sequence == "999" || request.name.contains("测试不符") {
        fields.push(Element::Name);
    }
    if sequence == "998" {
        fields.push(Element::IdNumber);
    }
    if request.bank_card.ends_with("0000") {
        fields.push(Element::BankCard);
    }
    if request
        .phone
        .as_deref()
        .is_some_and(|p| p.ends_with("0000"))
    {
        fields.push(Element::Phone);
    }
    if face.as_deref().is_some_and(|hash| hash.starts_with("0000")) {
        fields.push(Element::Face);
    }
    let verdict = if fields.is_empty() {
        Verdict::Match
    } else {
        Verdict::Mismatch { fields }
    };
    (verdict, liveness_passed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    const NAME: &str = "张小明";
    const CARD: &str = "6228480402564890018";
    const PHONE: &str = "13812345678";
    const FACE: &str = "5d41402abc4b2a76b9719d911017c592aa5d41402abc4b2a76b9719d911017c5";

    /// An ID number from 17 digits, with its check character computed.
    fn id_with_check(body: &str) -> String {
        let value = id_check_value(body.as_bytes());
        let last = if value == 10 {
            'X'
        } else {
            char::from(b'0' + value as u8)
        };
        format!("{body}{last}")
    }

    /// An ID number born 1990-03-07 in 110105 with sequence digits `sequence`.
    fn id(sequence: &str) -> String {
        id_with_check(&format!("11010519900307{sequence}"))
    }

    fn request(request_id: &str) -> VerificationRequest {
        VerificationRequest {
            request_id: request_id.to_string(),
            name: NAME.to_string(),
            id_number: id("123"),
            bank_card: CARD.to_string(),
            phone: Some(PHONE.to_string()),
            face_image_sha256: None,
        }
    }

    /// A quick, reliable sandbox: a few milliseconds, no failures, no duplicates.
    fn quiet() -> SandboxConfig {
        SandboxConfig {
            latency_ms: (1, 5),
            timeout_ms: 200,
            timeout_rate: 0.0,
            unavailable_rate: 0.0,
            duplicate_callback_rate: 0.0,
            async_face_check: true,
            seed: Some(7),
        }
    }

    fn sandbox(config: SandboxConfig) -> SandboxRealNameProvider {
        SandboxRealNameProvider::new(config).unwrap()
    }

    async fn verdict_of(req: VerificationRequest) -> Verdict {
        let provider = sandbox(SandboxConfig {
            async_face_check: false,
            ..quiet()
        });
        match provider.submit(&req).await.unwrap() {
            Submission::Completed(result) => result.verdict,
            other => panic!("expected an immediate result, got {other:?}"),
        }
    }

    fn mismatch(fields: &[Element]) -> Verdict {
        Verdict::Mismatch {
            fields: fields.to_vec(),
        }
    }

    async fn next_callback(rx: &mut mpsc::Receiver<Callback>) -> Option<Callback> {
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[test]
    fn check_character_matches_the_published_sample() {
        // The sample number of GB 11643-1999.
        assert!(id_number_ok("11010519491231002X"));
        assert!(id_number_ok("11010519491231002x"));
        assert!(!id_number_ok("110105194912310021"));
        assert!(!id_number_ok("11010519491231002"));
    }

    #[tokio::test]
    async fn an_ordinary_identity_matches() {
        let provider = sandbox(quiet());
        let req = request("r-1");
        let Submission::Completed(result) = provider.submit(&req).await.unwrap() else {
            panic!("four-element checks answer at once");
        };
        assert_eq!(result.verdict, Verdict::Match);
        assert_eq!(result.request_id, "r-1");
        assert_eq!(result.provider, "sandbox");
        assert!(result.is_sandbox());
        assert_eq!(result.liveness_passed, None);
        assert!(result.checked_at_ms > 0);
        assert!(provider.is_sandbox());
        assert_eq!(provider.name(), "sandbox");
    }

    #[tokio::test]
    async fn each_deterministic_identity_gives_its_answer() {
        let base = request("r");
        let with = |f: &dyn Fn(&mut VerificationRequest)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        let cases = [
            (
                with(&|r| r.id_number = id("999")),
                mismatch(&[Element::Name]),
            ),
            (
                with(&|r| r.id_number = id("998")),
                mismatch(&[Element::IdNumber]),
            ),
            (
                with(&|r| r.name = "王测试不符".into()),
                mismatch(&[Element::Name]),
            ),
            (
                with(&|r| r.bank_card = "6228480402564890000".into()),
                mismatch(&[Element::BankCard]),
            ),
            (
                with(&|r| r.phone = Some("13812340000".into())),
                mismatch(&[Element::Phone]),
            ),
            (
                with(&|r| r.face_image_sha256 = Some(format!("0000{}", &FACE[4..]))),
                mismatch(&[Element::Face]),
            ),
            (
                with(&|r| {
                    r.bank_card = "6228480402564890000".into();
                    r.id_number = id("999");
                    r.name = "测试不符".into();
                }),
                mismatch(&[Element::Name, Element::BankCard]),
            ),
            (with(&|r| r.phone = None), Verdict::Match),
            (
                with(&|r| r.face_image_sha256 = Some(FACE.into())),
                Verdict::Match,
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(verdict_of(req.clone()).await, expected, "{req:?}");
        }

        let unverifiable = with(&|r| r.bank_card = "6228480402564899999".into());
        assert!(matches!(
            verdict_of(unverifiable).await,
            Verdict::Unverifiable { .. }
        ));
    }

    #[tokio::test]
    async fn failed_liveness_is_unverifiable() {
        let provider = sandbox(SandboxConfig {
            async_face_check: false,
            ..quiet()
        });
        let mut req = request("r-live");
        req.face_image_sha256 = Some(format!("FFFF{}", &FACE[4..]));
        let Submission::Completed(result) = provider.submit(&req).await.unwrap() else {
            panic!("synchronous face checks answer at once");
        };
        assert_eq!(result.liveness_passed, Some(false));
        assert!(matches!(result.verdict, Verdict::Unverifiable { .. }));

        req.request_id = "r-live-2".into();
        req.face_image_sha256 = Some(FACE.into());
        let Submission::Completed(result) = provider.submit(&req).await.unwrap() else {
            panic!("synchronous face checks answer at once");
        };
        assert_eq!(result.liveness_passed, Some(true));
    }

    #[tokio::test]
    async fn malformed_input_is_rejected_with_a_sandbox_code() {
        let provider = sandbox(quiet());
        type Change = fn(&mut VerificationRequest);
        let cases: [(&str, Change); 7] = [
            ("sandbox_invalid_request_id", |r| r.request_id = " ".into()),
            ("sandbox_invalid_name", |r| r.name = "  ".into()),
            ("sandbox_invalid_id_number", |r| {
                r.id_number.replace_range(17.., "Y")
            }),
            ("sandbox_invalid_id_number", |r| {
                let wrong = if r.id_number.ends_with('0') { "1" } else { "0" };
                r.id_number.replace_range(17.., wrong);
            }),
            ("sandbox_invalid_bank_card", |r| {
                r.bank_card = "6228-4804".into()
            }),
            ("sandbox_invalid_phone", |r| {
                r.phone = Some("23812345678".into())
            }),
            ("sandbox_invalid_face_hash", |r| {
                r.face_image_sha256 = Some("abc".into())
            }),
        ];
        for (i, (code, change)) in cases.into_iter().enumerate() {
            let mut req = request(&format!("bad-{i}"));
            change(&mut req);
            let error = provider.submit(&req).await.unwrap_err();
            assert_eq!(error.code(), "realname_rejected");
            assert!(!error.is_retryable());
            let ProviderError::Rejected { code: got, message } = &error else {
                panic!("expected a rejection");
            };
            assert_eq!(got, code);
            for secret in [NAME, CARD, PHONE, req.id_number.as_str()] {
                assert!(!message.contains(secret) && !error.to_string().contains(secret));
            }
        }
    }

    #[tokio::test]
    async fn every_submission_times_out_at_rate_one_and_none_at_zero() {
        let provider = sandbox(SandboxConfig {
            timeout_rate: 1.0,
            timeout_ms: 30,
            ..quiet()
        });
        for i in 0..5 {
            let started = Instant::now();
            let error = provider
                .submit(&request(&format!("t-{i}")))
                .await
                .unwrap_err();
            assert_eq!(error, ProviderError::Timeout);
            assert_eq!(error.code(), "realname_timeout");
            assert!(error.is_retryable());
            assert!(
                started.elapsed() >= Duration::from_millis(30),
                "waits for the deadline"
            );
        }

        let provider = sandbox(SandboxConfig {
            latency_ms: (0, 1),
            ..quiet()
        });
        for i in 0..200 {
            assert!(provider.submit(&request(&format!("n-{i}"))).await.is_ok());
        }
    }

    #[tokio::test]
    async fn a_latency_beyond_the_deadline_is_a_timeout() {
        let provider = sandbox(SandboxConfig {
            latency_ms: (300, 400),
            timeout_ms: 20,
            ..quiet()
        });
        let started = Instant::now();
        let error = provider.submit(&request("slow")).await.unwrap_err();
        assert_eq!(error, ProviderError::Timeout);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(300),
            "at the deadline, not the latency"
        );
    }

    #[tokio::test]
    async fn unavailable_at_rate_one() {
        let provider = sandbox(SandboxConfig {
            unavailable_rate: 1.0,
            ..quiet()
        });
        let error = provider.submit(&request("u")).await.unwrap_err();
        assert!(matches!(&error, ProviderError::Unavailable(m) if m.starts_with("sandbox")));
        assert_eq!(error.code(), "realname_unavailable");
        assert!(error.is_retryable());
    }

    #[tokio::test]
    async fn answers_arrive_within_the_latency_range() {
        let config = SandboxConfig {
            latency_ms: (20, 40),
            ..quiet()
        };
        // The drawn latencies, exactly.
        let planner = sandbox(config.clone());
        for _ in 0..1_000 {
            let plan = planner.plan();
            for ms in [
                plan.latency_ms,
                plan.callback_delay_ms,
                plan.duplicate_delay_ms,
            ] {
                assert!((20..=40).contains(&ms), "{ms}");
            }
        }
        // The observed latencies, with room for a busy machine above the range.
        let provider = sandbox(config);
        for i in 0..10 {
            let started = Instant::now();
            provider.submit(&request(&format!("l-{i}"))).await.unwrap();
            let elapsed = started.elapsed();
            assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
            assert!(elapsed < Duration::from_millis(40 + 250), "{elapsed:?}");
        }
    }

    #[tokio::test]
    async fn an_async_face_check_answers_through_a_callback_with_its_ticket() {
        let provider = sandbox(quiet());
        let mut callbacks = provider.take_callbacks().unwrap();
        assert!(
            provider.take_callbacks().is_none(),
            "the channel is taken once"
        );

        let mut req = request("face-1");
        req.face_image_sha256 = Some(FACE.into());
        let Submission::Pending { ticket } = provider.submit(&req).await.unwrap() else {
            panic!("face checks are asynchronous");
        };
        assert!(ticket.starts_with("sandbox-"));
        let callback = next_callback(&mut callbacks).await.unwrap();
        assert_eq!(callback.ticket, ticket);
        assert_eq!(callback.delivery_attempt, 1);
        assert_eq!(callback.result.request_id, "face-1");
        assert_eq!(callback.result.verdict, Verdict::Match);
        assert_eq!(callback.result.liveness_passed, Some(true));
        assert!(callback.result.is_sandbox());
        assert!(
            next_callback(&mut callbacks).await.is_none(),
            "no duplicate at rate 0"
        );
    }

    #[tokio::test]
    async fn duplicate_callbacks_arrive_twice_and_apply_once() {
        let provider = sandbox(SandboxConfig {
            duplicate_callback_rate: 1.0,
            ..quiet()
        });
        let mut callbacks = provider.take_callbacks().unwrap();
        let dedup = Deduplicator::new();
        let mut tickets = Vec::new();
        for i in 0..3 {
            let mut req = request(&format!("dup-{i}"));
            req.face_image_sha256 = Some(FACE.into());
            let Submission::Pending { ticket } = provider.submit(&req).await.unwrap() else {
                panic!("face checks are asynchronous");
            };
            tickets.push(ticket);
        }
        let mut applied = Vec::new();
        let mut attempts: HashMap<String, Vec<u32>> = HashMap::new();
        for _ in 0..6 {
            let callback = next_callback(&mut callbacks).await.unwrap();
            attempts
                .entry(callback.ticket.clone())
                .or_default()
                .push(callback.delivery_attempt);
            if dedup.first_delivery(&callback) {
                applied.push(callback.ticket);
            }
        }
        assert!(next_callback(&mut callbacks).await.is_none());
        applied.sort();
        tickets.sort();
        assert_eq!(applied, tickets, "each ticket applied exactly once");
        assert_eq!(dedup.len(), 3);
        for ticket in &tickets {
            assert_eq!(attempts[ticket], [1, 2], "attempt 1, then the retry");
        }
    }

    #[test]
    fn the_deduplicator_keys_on_provider_and_ticket() {
        let dedup = Deduplicator::new();
        assert!(dedup.is_empty());
        let callback = Callback {
            ticket: "sandbox-1".into(),
            result: VerificationResult {
                request_id: "r".into(),
                provider: "sandbox".into(),
                verdict: Verdict::Match,
                checked_at_ms: 1,
                liveness_passed: None,
            },
            delivery_attempt: 1,
        };
        assert!(dedup.first_delivery(&callback));
        let retry = Callback {
            delivery_attempt: 2,
            ..callback.clone()
        };
        assert!(!dedup.first_delivery(&retry));
        let mut other = callback.clone();
        other.result.provider = "licensed".into();
        assert!(dedup.first_delivery(&other));
        assert_eq!(dedup.len(), 2);
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_sequence() {
        let config = SandboxConfig {
            latency_ms: (0, 3),
            timeout_ms: 5,
            timeout_rate: 0.3,
            unavailable_rate: 0.2,
            duplicate_callback_rate: 0.5,
            seed: Some(2024),
            ..quiet()
        };
        let plans = |config: SandboxConfig| {
            let provider = sandbox(config);
            (0..50).map(|_| provider.plan()).collect::<Vec<_>>()
        };
        assert_eq!(plans(config.clone()), plans(config.clone()));
        let other = SandboxConfig {
            seed: Some(2025),
            ..config.clone()
        };
        assert_ne!(plans(config.clone()), plans(other));

        // And the observable answers, ticket for ticket.
        async fn answers(config: SandboxConfig) -> Vec<String> {
            let provider = sandbox(config);
            let mut out = Vec::new();
            for i in 0..30 {
                let mut req = request(&format!("s-{i}"));
                req.face_image_sha256 = Some(FACE.into());
                out.push(match provider.submit(&req).await {
                    Ok(Submission::Pending { ticket }) => ticket,
                    Ok(Submission::Completed(r)) => r.verdict.kind().to_string(),
                    Err(e) => e.code().to_string(),
                });
            }
            out
        }
        let first = answers(config.clone()).await;
        assert_eq!(first, answers(config).await);
        assert!(first.iter().any(|a| a == "realname_timeout"));
        assert!(first.iter().any(|a| a.starts_with("sandbox-")));
    }

    #[tokio::test]
    async fn a_request_id_is_an_idempotency_key() {
        let provider = sandbox(quiet());
        let mut callbacks = provider.take_callbacks().unwrap();
        let mut req = request("idem");
        req.face_image_sha256 = Some(FACE.into());
        let first = provider.submit(&req).await.unwrap();
        assert!(matches!(first, Submission::Pending { .. }));
        assert_eq!(
            provider.submit(&req).await.unwrap(),
            first,
            "same ticket again"
        );
        assert!(next_callback(&mut callbacks).await.is_some());
        assert!(
            next_callback(&mut callbacks).await.is_none(),
            "checked once"
        );

        req.bank_card = "6228480402564890026".into();
        let error = provider.submit(&req).await.unwrap_err();
        assert!(matches!(
            error,
            ProviderError::Rejected { ref code, .. } if code == "sandbox_request_id_conflict"
        ));
    }

    #[tokio::test]
    async fn a_timed_out_request_may_have_been_processed() {
        let provider = sandbox(SandboxConfig {
            timeout_ms: 5,
            ..quiet()
        });
        let mut callbacks = provider.take_callbacks().unwrap();
        let mut req = request("lost-answer");
        req.face_image_sha256 = Some(FACE.into());
        let mut plan = provider.plan();
        plan.timed_out = true;
        plan.processed_despite_timeout = true;
        let error = provider.run(&req, plan.clone()).await.unwrap_err();
        assert_eq!(error, ProviderError::Timeout);
        // The callback arrives although the platform never saw the ticket...
        let callback = next_callback(&mut callbacks).await.unwrap();
        assert_eq!(callback.result.request_id, "lost-answer");
        // ...and the retry with the same request ID returns it without a second check.
        let retry = provider.submit(&req).await.unwrap();
        assert_eq!(
            retry,
            Submission::Pending {
                ticket: plan.ticket
            }
        );
        assert!(next_callback(&mut callbacks).await.is_none());

        // Lost before processing: the retry checks for the first time.
        let mut plan = provider.plan();
        plan.timed_out = true;
        plan.processed_despite_timeout = false;
        req.request_id = "lost-request".into();
        assert!(provider.run(&req, plan.clone()).await.is_err());
        assert!(next_callback(&mut callbacks).await.is_none());
        let Submission::Pending { ticket } = provider.submit(&req).await.unwrap() else {
            panic!("face checks are asynchronous");
        };
        assert_ne!(ticket, plan.ticket);
        assert_eq!(next_callback(&mut callbacks).await.unwrap().ticket, ticket);
    }

    #[tokio::test]
    async fn works_as_a_trait_object() {
        let provider: Arc<dyn RealNameProvider> = Arc::new(sandbox(quiet()));
        assert!(provider.is_sandbox());
        let answer = provider.submit(&request("dyn")).await.unwrap();
        assert!(matches!(answer, Submission::Completed(r) if r.verdict == Verdict::Match));
        assert!(format!("{provider:?}").contains("sandbox"));
    }

    #[test]
    fn debug_output_shows_no_personal_data() {
        let mut req = request("debug-1");
        req.name = "欧阳娜娜".into();
        req.face_image_sha256 = Some(FACE.into());
        let shown = format!("{req:?} {req:#?}");
        let id_number = req.id_number.clone();
        for secret in [
            "欧阳娜娜",
            "阳",
            "娜",
            id_number.as_str(),
            &id_number[6..14],
            CARD,
            PHONE,
        ] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(!shown.contains(&FACE[..16]));
        assert!(
            !shown.contains(&CARD[..6]),
            "the card shows only its last 4 digits"
        );
        assert!(shown.contains("欧***"));
        assert!(shown.contains(&format!("110105********{}", &id_number[14..])));
        assert!(shown.contains("***************0018"));
        assert!(shown.contains("138****5678"));
        assert!(shown.contains("debug-1"));
    }

    #[test]
    fn short_cards_are_hidden_entirely() {
        assert_eq!(mask_card_tail("1234"), "****");
        assert_eq!(mask_card_tail(""), "*");
        assert_eq!(
            mask_card_tail("6228 4804 0256 4890 018"),
            "***************0018"
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let bad_range = SandboxConfig {
            latency_ms: (10, 5),
            ..quiet()
        };
        let error = SandboxRealNameProvider::new(bad_range).unwrap_err();
        assert_eq!(error, SandboxConfigError::LatencyRange);
        for rate in [-0.1, 1.5, f64::NAN] {
            let config = SandboxConfig {
                duplicate_callback_rate: rate,
                ..quiet()
            };
            let error = SandboxRealNameProvider::new(config).unwrap_err();
            assert_eq!(error, SandboxConfigError::Rate("duplicate_callback_rate"));
        }
        assert!(SandboxRealNameProvider::new(SandboxConfig::default()).is_ok());
    }

    #[test]
    fn results_serialise_without_personal_data_and_with_the_sandbox_name() {
        let result = VerificationResult {
            request_id: "r".into(),
            provider: SANDBOX_PROVIDER.into(),
            verdict: mismatch(&[Element::Name, Element::BankCard]),
            checked_at_ms: 5,
            liveness_passed: Some(true),
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["provider"], "sandbox");
        assert_eq!(json["verdict"]["verdict"], "mismatch");
        assert_eq!(json["verdict"]["fields"][1], "bank_card");
        let back: VerificationResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, result);
        assert_eq!(Element::IdNumber.as_str(), "id_number");
    }
}

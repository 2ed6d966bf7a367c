//! Paying workers through a payment provider (5.5.1): the provider interface and a
//! **sandbox** provider.
//!
//! # This is a sandbox
//!
//! Money reaches a worker's bank card only through a licensed payment institution, which this
//! project cannot reach. This module offers:
//!
//! - [`PaymentProvider`], the interface the payout job ([`crate::payouts`]) calls. A licensed
//!   provider plugs in by implementing it in its own module: an HTTP client that signs
//!   requests with the platform's merchant key, submits each payout under the platform's
//!   idempotency key, queries a payout by that key, and whose HTTP callbacks arrive at
//!   `POST /api/v1/payments/callbacks` signed with `[payments] callback_secret`.
//! - [`SandboxPaymentProvider`], a stand-in that behaves like a provider's sandbox
//!   environment: latency, rejections, timeouts (after which it may or may not have paid),
//!   asynchronous results and callbacks delivered twice. It moves no money: its references
//!   start with `sandbox-`, its rejection codes with `sandbox_`, its log lines name the
//!   provider `sandbox`, and the server warns at start that payouts go to the sandbox.
//!
//! # What the platform relies on
//!
//! Like every real provider's payout API, a submission is idempotent by key: submitting a
//! key again returns the first answer and never pays again, and a query by key answers what
//! became of it, or that the provider never received it ([`PayoutState`] `None`). The payout
//! job therefore never invents a new key for a payout the provider may hold; it asks.
//!
//! # Behaviour of the sandbox
//!
//! Every call waits a latency drawn from [`SandboxConfig::latency_ms`]. The fate of each new
//! key is taken from [`SandboxConfig::script`] while it lasts (for tests that need one exact
//! sequence), then drawn: at [`SandboxConfig::timeout_rate`] the call times out after
//! [`SandboxConfig::timeout_ms`], having paid one time in two (the answer was lost on the way
//! back); at [`SandboxConfig::reject_rate`] the payee's card is closed
//! (`sandbox_card_closed`); at [`SandboxConfig::async_rate`] the payout is accepted as
//! processing and the result comes later as a callback, delivered twice at
//! [`SandboxConfig::duplicate_callback_rate`]; otherwise it is paid at once. It records every
//! payment it made ([`SandboxPaymentProvider::payments`]), so tests can check nobody was
//! paid twice.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use crate::realname::BoxFuture;

/// The provider name of the sandbox, in payouts, references, codes and log lines.
pub const SANDBOX_PROVIDER: &str = "sandbox";

/// How many callbacks wait in the channel before delivery blocks.
const CALLBACK_CAPACITY: usize = 1024;

/// One payout handed to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    /// `payout:{worker}:{period}:{attempt}`: the provider pays each key at most once.
    pub idempotency_key: String,
    /// The platform's payout id, echoed in the provider's records.
    pub payout_id: String,
    /// The payee's account id on the platform. A licensed adapter resolves it to the
    /// verified bank card the worker registered at onboarding; it is never a card number.
    pub payee: String,
    /// Amount in fen.
    pub amount_fen: i64,
}

/// What became of a payout, as the provider says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayoutState {
    /// The money left: the provider's reference for the transfer.
    Paid { provider_ref: String },
    /// Refused for good (card closed, name mismatch): nothing was paid under this key.
    Rejected { code: String, reason: String },
    /// Accepted; the result comes later by callback or query.
    Processing { provider_ref: String },
}

/// Why a call to the provider gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// No answer in time: the provider may or may not have acted on the request.
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// The provider said it is unavailable; it may still have received the request.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

/// An asynchronous result sent by the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentCallback {
    /// The provider's id of this notification; the same on every delivery of it.
    pub callback_id: String,
    /// The provider that sent it.
    pub provider: String,
    /// The payout's idempotency key.
    pub idempotency_key: String,
    /// 1 for the first delivery, more for the provider's retries.
    pub delivery_attempt: u32,
    /// The payout's final state: `paid` or `rejected`.
    pub outcome: PayoutState,
}

/// A payment provider: the sandbox here, a licensed provider in production. Dyn-compatible,
/// so the platform holds an `Arc<dyn PaymentProvider>` chosen by configuration.
pub trait PaymentProvider: Send + Sync + fmt::Debug {
    /// The provider's name, stored on every payout.
    fn name(&self) -> &'static str;

    /// Whether this provider is a sandbox that moves no money.
    fn is_sandbox(&self) -> bool;

    /// Submits a payout. The same key again returns the first answer and never pays twice.
    fn submit<'a>(
        &'a self,
        request: &'a PayoutRequest,
    ) -> BoxFuture<'a, Result<PayoutState, PaymentError>>;

    /// What became of the payout submitted under `key`; `None` when the provider never
    /// received it (it is then safe to submit the same key again).
    fn query<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PayoutState>, PaymentError>>;

    /// The channel of asynchronous results delivered in-process, taken once by the
    /// platform; `None` once taken or for providers that only call back over HTTP.
    fn take_callbacks(&self) -> Option<mpsc::Receiver<PaymentCallback>>;

    /// The sandbox itself, for tests and tools that inspect what it paid.
    fn as_sandbox(&self) -> Option<&SandboxPaymentProvider> {
        None
    }
}

/// A scripted fate for the next new key the sandbox sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxFate {
    /// Paid at once.
    Paid,
    /// Rejected: the payee's card account is closed.
    Rejected,
    /// Accepted as processing; paid, and called back, a moment later.
    Async,
    /// Paid, but the answer is lost: the call times out.
    TimeoutPaid,
    /// The request is lost: the call times out and nothing is recorded.
    TimeoutLost,
}

/// How the sandbox behaves (`[payments.sandbox]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Inclusive range of the answer latency, in milliseconds.
    pub latency_ms: (u64, u64),
    /// The caller's deadline, in milliseconds: a timed-out call returns after it.
    pub timeout_ms: u64,
    /// Fraction of new payouts (0 to 1) whose call times out.
    pub timeout_rate: f64,
    /// Fraction of new payouts (0 to 1) rejected because the payee's card is closed.
    pub reject_rate: f64,
    /// Fraction of new payouts (0 to 1) answered later, by callback.
    pub async_rate: f64,
    /// Fraction of callbacks (0 to 1) delivered twice.
    pub duplicate_callback_rate: f64,
    /// Whether asynchronous results are delivered on the in-process channel; when false
    /// they are only known by query (or by a callback posted over HTTP).
    pub deliver_callbacks: bool,
    /// Fates of the first new keys, in order, before the rates apply.
    pub script: Vec<SandboxFate>,
    /// A JSON file where the sandbox keeps what it recorded per key and what it paid, so
    /// that after a restart it still knows them, as a real provider does; none keeps them
    /// in memory only.
    pub state_file: Option<std::path::PathBuf>,
    /// Seed of the random generator; `None` seeds from the operating system.
    pub seed: Option<u64>,
}

impl Default for SandboxConfig {
    /// Resembles a provider's sandbox: 100–500 ms, a 5 s deadline, a few timeouts and
    /// rejections, one payout in five answered by callback, one callback in ten twice.
    fn default() -> Self {
        SandboxConfig {
            latency_ms: (100, 500),
            timeout_ms: 5_000,
            timeout_rate: 0.02,
            reject_rate: 0.02,
            async_rate: 0.2,
            duplicate_callback_rate: 0.1,
            deliver_callbacks: true,
            script: Vec::new(),
            state_file: None,
            seed: None,
        }
    }
}

/// Why a [`SandboxConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxConfigError {
    #[error("sandbox latency range is empty: minimum above maximum")]
    LatencyRange,
    #[error("sandbox {0} must be a number from 0 to 1")]
    Rate(&'static str),
    #[error("sandbox timeout_rate, reject_rate and async_rate must add up to at most 1")]
    RateSum,
    #[error("sandbox state file {0} cannot be read: {1}")]
    StateFile(String, String),
}

/// One payment the sandbox made: money that would have left the platform's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPayment {
    pub idempotency_key: String,
    pub payout_id: String,
    pub payee: String,
    pub amount_fen: i64,
    pub provider_ref: String,
}

/// What the sandbox remembers of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recorded {
    amount_fen: i64,
    payee: String,
    state: PayoutState,
}

/// What [`SandboxConfig::state_file`] holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Books {
    recorded: HashMap<String, Recorded>,
    payments: Vec<SandboxPayment>,
}

/// A **sandbox** payment provider: it moves no money. See the [module](self) docs.
pub struct SandboxPaymentProvider {
    config: SandboxConfig,
    rng: Mutex<StdRng>,
    script: Mutex<VecDeque<SandboxFate>>,
    recorded: Mutex<HashMap<String, Recorded>>,
    payments: Mutex<Vec<SandboxPayment>>,
    submissions: Mutex<HashMap<String, u32>>,
    sender: mpsc::Sender<PaymentCallback>,
    receiver: Mutex<Option<mpsc::Receiver<PaymentCallback>>>,
}

impl fmt::Debug for SandboxPaymentProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxPaymentProvider")
            .field("provider", &SANDBOX_PROVIDER)
            .field("config", &self.config)
            .field("payments", &lock(&self.payments).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SandboxPaymentProvider {
    /// A sandbox behaving as `config` says.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxConfigError> {
        if config.latency_ms.0 > config.latency_ms.1 {
            return Err(SandboxConfigError::LatencyRange);
        }
        for (name, rate) in [
            ("timeout_rate", config.timeout_rate),
            ("reject_rate", config.reject_rate),
            ("async_rate", config.async_rate),
            ("duplicate_callback_rate", config.duplicate_callback_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SandboxConfigError::Rate(name));
            }
        }
        if config.timeout_rate + config.reject_rate + config.async_rate > 1.0 {
            return Err(SandboxConfigError::RateSum);
        }
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let books = match &config.state_file {
            Some(path) if path.exists() => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<Books>(&bytes).map_err(|e| e.to_string())
                })
                .map_err(|e| SandboxConfigError::StateFile(path.display().to_string(), e))?,
            _ => Books::default(),
        };
        let (sender, receiver) = mpsc::channel(CALLBACK_CAPACITY);
        Ok(SandboxPaymentProvider {
            script: Mutex::new(config.script.iter().copied().collect()),
            config,
            rng: Mutex::new(rng),
            recorded: Mutex::new(books.recorded),
            payments: Mutex::new(books.payments),
            submissions: Mutex::new(HashMap::new()),
            sender,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    /// Every payment the sandbox made, in order.
    pub fn payments(&self) -> Vec<SandboxPayment> {
        lock(&self.payments).clone()
    }

    /// How many times `key` was submitted (retries included).
    pub fn submissions(&self, key: &str) -> u32 {
        lock(&self.submissions).get(key).copied().unwrap_or(0)
    }

    /// Writes the books to the state file, if one is configured; called with `recorded`
    /// locked, so writes follow each other in order.
    fn persist(&self, recorded: &HashMap<String, Recorded>) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let books = Books {
            recorded: recorded.clone(),
            payments: lock(&self.payments).clone(),
        };
        let written = serde_json::to_vec(&books)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let staging = path.with_extension("json.partial");
                std::fs::write(&staging, bytes)?;
                std::fs::rename(&staging, path)
            });
        if let Err(e) = written {
            tracing::error!(provider = SANDBOX_PROVIDER, error = %e,
                "sandbox could not write its state file");
        }
    }

    fn latency(&self) -> Duration {
        let (min, max) = self.config.latency_ms;
        Duration::from_millis(lock(&self.rng).random_range(min..=max))
    }

    fn reference(&self) -> String {
        let bytes = lock(&self.rng).random::<[u8; 12]>();
        format!("{SANDBOX_PROVIDER}-{}", hex::encode(bytes))
    }

    /// The fate of a new key: the script first, then the rates.
    fn fate(&self) -> SandboxFate {
        if let Some(fate) = lock(&self.script).pop_front() {
            return fate;
        }
        let c = &self.config;
        let mut rng = lock(&self.rng);
        let draw = rng.random::<f64>();
        let paid_anyway = rng.random::<bool>();
        if draw < c.timeout_rate {
            if paid_anyway {
                SandboxFate::TimeoutPaid
            } else {
                SandboxFate::TimeoutLost
            }
        } else if draw < c.timeout_rate + c.reject_rate {
            SandboxFate::Rejected
        } else if draw < c.timeout_rate + c.reject_rate + c.async_rate {
            SandboxFate::Async
        } else {
            SandboxFate::Paid
        }
    }

    /// Records a payment made under `request`'s key.
    fn pay(&self, request: &PayoutRequest, provider_ref: &str) {
        lock(&self.payments).push(SandboxPayment {
            idempotency_key: request.idempotency_key.clone(),
            payout_id: request.payout_id.clone(),
            payee: request.payee.clone(),
            amount_fen: request.amount_fen,
            provider_ref: provider_ref.to_owned(),
        });
    }

    async fn run(&self, request: &PayoutRequest) -> Result<PayoutState, PaymentError> {
        let key = request.idempotency_key.as_str();
        *lock(&self.submissions).entry(key.to_owned()).or_default() += 1;
        if key.trim().is_empty() || request.amount_fen <= 0 {
            tokio::time::sleep(self.latency()).await;
            return Ok(PayoutState::Rejected {
                code: "sandbox_invalid_request".into(),
                reason: "sandbox: the key is empty or the amount is not positive".into(),
            });
        }
        // One lock from look-up to recording: two concurrent submissions of a key pay once.
        let (state, fate) = {
            let mut recorded = lock(&self.recorded);
            if let Some(previous) = recorded.get(key) {
                let state = if previous.amount_fen != request.amount_fen
                    || previous.payee != request.payee
                {
                    PayoutState::Rejected {
                        code: "sandbox_key_conflict".into(),
                        reason: "sandbox: this key was already used for another payout".into(),
                    }
                } else {
                    previous.state.clone()
                };
                tracing::info!(
                    provider = SANDBOX_PROVIDER,
                    key,
                    "sandbox replayed a payout answer"
                );
                (Some(state), None)
            } else {
                let fate = self.fate();
                let state = match fate {
                    SandboxFate::Paid | SandboxFate::TimeoutPaid => {
                        let provider_ref = self.reference();
                        self.pay(request, &provider_ref);
                        Some(PayoutState::Paid { provider_ref })
                    }
                    SandboxFate::Rejected => Some(PayoutState::Rejected {
                        code: "sandbox_card_closed".into(),
                        reason: "sandbox: the payee's card account is closed (simulated)".into(),
                    }),
                    SandboxFate::Async => Some(PayoutState::Processing {
                        provider_ref: self.reference(),
                    }),
                    SandboxFate::TimeoutLost => None,
                };
                if let Some(state) = &state {
                    let entry = Recorded {
                        amount_fen: request.amount_fen,
                        payee: request.payee.clone(),
                        state: state.clone(),
                    };
                    recorded.insert(key.to_owned(), entry);
                    self.persist(&recorded);
                }
                (state, Some(fate))
            }
        };
        match fate {
            Some(SandboxFate::TimeoutPaid | SandboxFate::TimeoutLost) => {
                tokio::time::sleep(Duration::from_millis(self.config.timeout_ms)).await;
                tracing::warn!(
                    provider = SANDBOX_PROVIDER,
                    key,
                    processed = state.is_some(),
                    "sandbox payout timed out"
                );
                return Err(PaymentError::Timeout);
            }
            Some(SandboxFate::Async) => {
                if let Some(PayoutState::Processing { provider_ref }) = &state {
                    self.complete_later(request.clone(), provider_ref.clone());
                }
            }
            _ => {}
        }
        tokio::time::sleep(self.latency()).await;
        let state = state.ok_or(PaymentError::Timeout)?;
        tracing::info!(
            provider = SANDBOX_PROVIDER,
            key,
            state = state_word(&state),
            "sandbox payout answered"
        );
        Ok(state)
    }

    /// Pays a processing payout after a latency and delivers its callback (twice at the
    /// duplicate rate).
    fn complete_later(&self, request: PayoutRequest, provider_ref: String) {
        let delay = self.latency();
        let again = self.latency();
        let duplicate = lock(&self.rng).random::<f64>() < self.config.duplicate_callback_rate;
        let callback_id = self.reference();
        // Paid now in the sandbox's books: a query from here on answers paid, as a real
        // provider's would once the transfer is booked.
        self.pay(&request, &provider_ref);
        let outcome = PayoutState::Paid { provider_ref };
        {
            let mut recorded = lock(&self.recorded);
            if let Some(entry) = recorded.get_mut(&request.idempotency_key) {
                entry.state = outcome.clone();
            }
            self.persist(&recorded);
        }
        if !self.config.deliver_callbacks {
            return;
        }
        let callback = PaymentCallback {
            callback_id,
            provider: SANDBOX_PROVIDER.into(),
            idempotency_key: request.idempotency_key,
            delivery_attempt: 1,
            outcome,
        };
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let second = PaymentCallback {
                delivery_attempt: 2,
                ..callback.clone()
            };
            deliver(&sender, callback).await;
            if duplicate {
                tokio::time::sleep(again).await;
                deliver(&sender, second).await;
            }
        });
    }
}

/// The state's name in logs.
pub fn state_word(state: &PayoutState) -> &'static str {
    match state {
        PayoutState::Paid { .. } => "paid",
        PayoutState::Rejected { .. } => "rejected",
        PayoutState::Processing { .. } => "processing",
    }
}

async fn deliver(sender: &mpsc::Sender<PaymentCallback>, callback: PaymentCallback) {
    let (id, attempt) = (callback.callback_id.clone(), callback.delivery_attempt);
    match sender.send(callback).await {
        Ok(()) => tracing::info!(provider = SANDBOX_PROVIDER, callback_id = %id, attempt,
            "sandbox delivered a payment callback"),
        Err(_) => tracing::warn!(provider = SANDBOX_PROVIDER, callback_id = %id, attempt,
            "sandbox payment callback dropped: nobody listens"),
    }
}

impl PaymentProvider for SandboxPaymentProvider {
    fn name(&self) -> &'static str {
        SANDBOX_PROVIDER
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    fn submit<'a>(
        &'a self,
        request: &'a PayoutRequest,
    ) -> BoxFuture<'a, Result<PayoutState, PaymentError>> {
        Box::pin(self.run(request))
    }

    fn query<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PayoutState>, PaymentError>> {
        Box::pin(async move {
            tokio::time::sleep(self.latency()).await;
            let state = lock(&self.recorded).get(key).map(|r| r.state.clone());
            tracing::info!(
                provider = SANDBOX_PROVIDER,
                key,
                state = state.as_ref().map_or("unknown to the provider", state_word),
                "sandbox payout queried"
            );
            Ok(state)
        })
    }

    fn take_callbacks(&self) -> Option<mpsc::Receiver<PaymentCallback>> {
        lock(&self.receiver).take()
    }

    fn as_sandbox(&self) -> Option<&SandboxPaymentProvider> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(script: Vec<SandboxFate>) -> SandboxPaymentProvider {
        SandboxPaymentProvider::new(SandboxConfig {
            latency_ms: (0, 1),
            timeout_ms: 5,
            timeout_rate: 0.0,
            reject_rate: 0.0,
            async_rate: 0.0,
            duplicate_callback_rate: 0.0,
            deliver_callbacks: true,
            script,
            state_file: None,
            seed: Some(7),
        })
        .unwrap()
    }

    fn request(key: &str, fen: i64) -> PayoutRequest {
        PayoutRequest {
            idempotency_key: key.into(),
            payout_id: format!("id-{key}"),
            payee: "w1".into(),
            amount_fen: fen,
        }
    }

    #[tokio::test]
    async fn a_key_is_paid_once_however_often_it_is_submitted() {
        let sandbox = quiet(vec![SandboxFate::TimeoutPaid]);
        let first = sandbox.submit(&request("k1", 500)).await;
        assert_eq!(first, Err(PaymentError::Timeout));
        let again = sandbox.submit(&request("k1", 500)).await.unwrap();
        assert!(matches!(again, PayoutState::Paid { .. }), "{again:?}");
        assert_eq!(sandbox.payments().len(), 1);
        assert_eq!(sandbox.submissions("k1"), 2);
        let conflict = sandbox.submit(&request("k1", 501)).await.unwrap();
        assert!(matches!(conflict, PayoutState::Rejected { ref code, .. }
            if code == "sandbox_key_conflict"));
        assert_eq!(sandbox.payments().len(), 1);
    }

    #[tokio::test]
    async fn a_lost_request_is_unknown_to_the_provider_and_may_be_sent_again() {
        let sandbox = quiet(vec![SandboxFate::TimeoutLost, SandboxFate::Rejected]);
        assert_eq!(
            sandbox.submit(&request("k1", 500)).await,
            Err(PaymentError::Timeout)
        );
        assert_eq!(sandbox.query("k1").await.unwrap(), None);
        let answer = sandbox.submit(&request("k1", 500)).await.unwrap();
        assert!(matches!(answer, PayoutState::Rejected { .. }));
        assert_eq!(sandbox.query("k1").await.unwrap(), Some(answer));
        assert!(sandbox.payments().is_empty());
    }

    #[tokio::test]
    async fn an_asynchronous_payout_is_called_back_and_answers_paid_to_a_query() {
        let mut config = quiet(vec![SandboxFate::Async]).config.clone();
        config.duplicate_callback_rate = 1.0;
        let sandbox = SandboxPaymentProvider::new(config).unwrap();
        let mut callbacks = sandbox.take_callbacks().unwrap();
        let answer = sandbox.submit(&request("k1", 500)).await.unwrap();
        assert!(matches!(answer, PayoutState::Processing { .. }));
        let first = callbacks.recv().await.unwrap();
        let second = callbacks.recv().await.unwrap();
        assert_eq!(first.callback_id, second.callback_id);
        assert_eq!((first.delivery_attempt, second.delivery_attempt), (1, 2));
        assert!(matches!(first.outcome, PayoutState::Paid { .. }));
        let queried = sandbox.query("k1").await.unwrap();
        assert!(matches!(queried, Some(PayoutState::Paid { .. })));
        assert_eq!(sandbox.payments().len(), 1);
        assert!(sandbox.take_callbacks().is_none());
    }

    #[tokio::test]
    async fn with_a_state_file_a_restarted_sandbox_remembers_what_it_paid() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = quiet(vec![SandboxFate::TimeoutPaid]).config.clone();
        config.state_file = Some(dir.path().join("sandbox.json"));
        let before = SandboxPaymentProvider::new(config.clone()).unwrap();
        assert_eq!(
            before.submit(&request("k1", 500)).await,
            Err(PaymentError::Timeout)
        );
        drop(before);
        config.script.clear();
        let after = SandboxPaymentProvider::new(config).unwrap();
        assert!(matches!(
            after.query("k1").await.unwrap(),
            Some(PayoutState::Paid { .. })
        ));
        let again = after.submit(&request("k1", 500)).await.unwrap();
        assert!(matches!(again, PayoutState::Paid { .. }));
        assert_eq!(after.payments().len(), 1);
    }

    #[test]
    fn nonsense_settings_are_refused() {
        let bad = SandboxConfig {
            reject_rate: 1.5,
            ..SandboxConfig::default()
        };
        assert_eq!(
            SandboxPaymentProvider::new(bad).unwrap_err(),
            SandboxConfigError::Rate("reject_rate")
        );
        let too_much = SandboxConfig {
            timeout_rate: 0.5,
            reject_rate: 0.5,
            async_rate: 0.5,
            ..SandboxConfig::default()
        };
        assert_eq!(
            SandboxPaymentProvider::new(too_much).unwrap_err(),
            SandboxConfigError::RateSum
        );
    }
}

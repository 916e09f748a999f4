//! Webhooks of `depot serve`: each event a hook takes is POSTed as JSON, signed with
//! HMAC-SHA256 over the body (`X-Depot-Signature: sha256=<hex>`) when the hook has a secret,
//! with a delivery id that stays the same across retries (`X-Depot-Delivery`). A refused or
//! failed delivery is tried again with exponential backoff until the event is a day old (at
//! least), then given up; a package's events go out in order, each waiting for the one before.

use crate::domain::{Attempt, Delivery, DeliveryState, Timestamp};
use crate::store::{HookStore, StoreResult};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// When to try again, and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait after a first failure; it doubles after each one.
    pub first: Duration,
    /// The longest wait between tries.
    pub longest: Duration,
    /// A delivery still failing once its event is this old is given up.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(10),
            longest: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(25 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed try (1: the first).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self.first.saturating_mul(
            1u32.checked_shl(attempts.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.min(self.longest)
    }

    /// What a try of `delivery` at `at` that answered `status` (or failed: `error`) makes of it.
    pub fn outcome(
        &self,
        delivery: &Delivery,
        at: Timestamp,
        status: Option<u16>,
        error: Option<String>,
    ) -> Attempt {
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let age = Duration::from_millis((at.millis() - delivery.event.time.millis()).max(0) as u64);
        let state = if delivered {
            DeliveryState::Delivered
        } else if age >= self.give_up_after {
            DeliveryState::Failed
        } else {
            DeliveryState::Pending
        };
        let wait = self.backoff(delivery.attempts + 1);
        Attempt {
            at,
            status,
            error,
            state,
            next_at: at.plus_millis(wait.as_millis() as i64),
        }
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`, as `X-Depot-Signature` carries it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Deliveries going out at once.
const CONCURRENT: usize = 8;
/// Deliveries one pass takes.
const PASS: usize = 64;
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends what is due, pass after pass.
pub struct Webhooks {
    store: Arc<dyn HookStore>,
    client: reqwest::Client,
    retry: RetryPolicy,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Webhooks {
    pub fn new(store: Arc<dyn HookStore>, retry: RetryPolicy) -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client without TLS settings of its own builds");
        Self {
            store,
            client,
            retry,
            metrics: Arc::default(),
        }
    }

    /// Count deliveries in `metrics` (the registry's, shown at `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// One pass: new events become deliveries, then what is due is sent; how many were tried.
    pub async fn pass(&self) -> StoreResult<usize> {
        self.store.fan_out(Timestamp::now()).await?;
        let due = self.store.due_deliveries(Timestamp::now(), PASS).await?;
        let tried = due.len();
        let outcomes = futures::stream::iter(due)
            .map(|delivery| async move {
                let attempt = self.send(&delivery).await;
                self.store.record_attempt(&delivery, &attempt).await
            })
            .buffer_unordered(CONCURRENT)
            .collect::<Vec<_>>()
            .await;
        outcomes.into_iter().collect::<StoreResult<Vec<()>>>()?;
        Ok(tried)
    }

    /// Pass after pass, every `every` (sooner while there is more to send), for good.
    pub async fn run(self, every: Duration) {
        loop {
            match self.pass().await {
                Ok(n) if n >= PASS => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "webhook deliveries failed; trying again"),
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn send(&self, delivery: &Delivery) -> Attempt {
        let body = delivery.event.to_json().into_bytes();
        let mut request = self
            .client
            .post(&delivery.hook.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("depot/", env!("CARGO_PKG_VERSION")))
            .header("x-depot-event", delivery.event.kind.as_str())
            .header("x-depot-delivery", &delivery.delivery_id)
            .header("x-depot-hook-id", delivery.hook.id.to_string());
        if let Some(secret) = &delivery.hook.secret {
            request = request.header("x-depot-signature", signature(secret, &body));
        }
        let answer = request.body(body).send().await;
        let at = Timestamp::now();
        let (status, error) = match answer {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(without_url(&e))),
        };
        let attempt = self.retry.outcome(delivery, at, status, error);
        let lag = (at.millis() - delivery.event.time.millis()).max(0) as u64;
        let (outcome, lag) = match attempt.state {
            DeliveryState::Delivered => ("delivered", Some(Duration::from_millis(lag))),
            DeliveryState::Pending => ("refused", None),
            DeliveryState::Failed => ("failed", None),
        };
        self.metrics.delivery(outcome, lag);
        if attempt.state != DeliveryState::Delivered {
            tracing::warn!(
                hook = delivery.hook.id,
                delivery = %delivery.delivery_id,
                status = ?status,
                state = attempt.state.as_str(),
                "webhook delivery refused"
            );
        }
        attempt
    }
}

/// A request's error without its URL (a hook's URL may carry a secret in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_longest_wait() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(10));
        assert_eq!(p.backoff(2), Duration::from_secs(20));
        assert_eq!(p.backoff(5), Duration::from_secs(160));
        assert_eq!(p.backoff(12), Duration::from_secs(3600));
        assert_eq!(p.backoff(200), Duration::from_secs(3600));
        // Retries cover at least a day before a delivery is given up.
        let total: Duration = (1..=40).map(|n| p.backoff(n)).sum();
        assert!(total >= Duration::from_secs(24 * 3600));
        assert!(p.give_up_after >= Duration::from_secs(24 * 3600));
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

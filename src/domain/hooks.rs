//! Webhooks of `depot serve`: where a project's or group's events are POSTed, and what became
//! of each delivery.

use super::{Event, EventType, MembershipTarget, Timestamp};

/// A webhook as saved. Its secret signs deliveries (HMAC needs the secret itself, so it is
/// kept as given, like GitLab's hook tokens, and never shown again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub id: i64,
    pub target: MembershipTarget,
    pub url: String,
    pub secret: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The events it takes.
    pub event_types: Vec<EventType>,
    pub enable_ssl_verification: bool,
    pub created_at: Timestamp,
}

impl Hook {
    /// A hook's URL as given, if it is one depot can POST to (http or https, with a host);
    /// the reason it is not otherwise (GitLab's wording).
    pub fn checked_url(url: &str) -> Result<String, String> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        parsed
            .map(|u| u.to_string())
            .ok_or_else(|| "is blocked: Only allowed schemes are http, https".to_string())
    }

    /// Does this hook take `event`? A project's hook takes its project's events; a group's,
    /// those of every project and group below it.
    pub fn takes(&self, event: &Event) -> bool {
        let place = match &self.target {
            MembershipTarget::Project(id) => event.project.as_ref().is_some_and(|p| p.id == *id),
            MembershipTarget::Group(path) => event.concerns(path),
        };
        place && self.event_types.contains(&event.kind)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up on: still refused when its retries ran out.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event due to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub hook: Hook,
    /// Where the event stands in the log: deliveries of one package go out in this order.
    pub seq: i64,
    pub event: Event,
    /// Stays the same across retries (`X-Depot-Delivery`): receivers drop repeats by it.
    pub delivery_id: String,
    pub attempts: u32,
}

/// How one try went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: Timestamp,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// What the delivery becomes, and when to try again if it stays pending.
    pub state: DeliveryState,
    pub next_at: Timestamp,
}

/// What became of a hook's deliveries: its log's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookLog {
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_at: Option<Timestamp>,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

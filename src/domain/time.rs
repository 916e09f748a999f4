//! Timestamps: milliseconds since the Unix epoch, rendered the way GitLab renders them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision (what GitLab's API shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + seconds`.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    /// `self + millis`.
    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Midnight UTC at the start of a `YYYY-MM-DD` date.
    pub fn parse_date(date: &str) -> Option<Self> {
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        Some(Self(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()))
    }

    /// An ISO 8601 time with its offset (`2026-11-30T08:00:00Z`), or a date (its midnight UTC).
    pub fn parse_iso(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self(t.timestamp_millis()))
            .ok()
            .or_else(|| Self::parse_date(text))
    }

    /// The UTC date: `2021-10-12` (how GitLab shows token expiries, and the UI dates).
    pub fn to_date(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Midnight UTC at the start of this instant's day.
    pub fn start_of_day(self) -> Self {
        Self(self.0 - self.0.rem_euclid(86_400_000))
    }

    /// ISO-8601 UTC with milliseconds: `2021-10-12T12:05:23.387Z`.
    pub fn to_iso8601(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso8601())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let at = DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(Self(at.timestamp_millis()))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn dates_and_days() {
        let at = Timestamp::parse_date("2026-11-30")
            .unwrap()
            .plus_seconds(3_600 * 13 + 5);
        assert_eq!(at.to_date(), "2026-11-30");
        assert_eq!(
            at.start_of_day(),
            Timestamp::parse_date("2026-11-30").unwrap()
        );
        assert_eq!(
            Timestamp::from_millis(-1).start_of_day().to_date(),
            "1969-12-31"
        );
    }

    use super::*;

    #[test]
    fn reads_back_what_it_renders() {
        let at = Timestamp::from_millis(1_634_040_323_387);
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn renders_like_gitlab() {
        assert_eq!(
            Timestamp::from_millis(1_634_040_323_387).to_iso8601(),
            "2021-10-12T12:05:23.387Z"
        );
        assert_eq!(
            Timestamp::from_millis(0).to_iso8601(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_dates() {
        assert_eq!(
            Timestamp::parse_date("2021-10-12").unwrap().to_iso8601(),
            "2021-10-12T00:00:00.000Z"
        );
        assert!(Timestamp::parse_date("2021-13-01").is_none());
        assert!(Timestamp::parse_date("tomorrow").is_none());
    }

    #[test]
    fn parses_iso_times_and_dates() {
        let iso = |t: &str| Timestamp::parse_iso(t).map(Timestamp::to_iso8601);
        let at = "2026-11-30T08:00:00.250Z";
        assert_eq!(iso(at).as_deref(), Some(at));
        let offset = iso("2026-11-30T09:00:00+01:00");
        assert_eq!(offset.as_deref(), Some("2026-11-30T08:00:00.000Z"));
        assert_eq!(
            iso("2026-11-30").as_deref(),
            Some("2026-11-30T00:00:00.000Z")
        );
        assert!(Timestamp::parse_iso("soon").is_none());
    }
}

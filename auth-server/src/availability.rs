//! Whether the database can be reached, as every part of an instance sees it: a circuit breaker
//! for request paths (while the database is known to be down, they fail at once instead of each
//! waiting out a time-out) and how stale what the instance holds in memory has become.
//!
//! The client-sync loop probes the database every `client_sync_interval_ms`, bypassing the
//! breaker; any request's round trip counts too. A failure opens the breaker at once; the next
//! success closes it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Availability {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last successful round trip.
    last_ok_ms: AtomicU64,
    down: AtomicBool,
    max_stale: Duration,
}

impl Availability {
    /// Up, as of now; what is held in memory may serve for `max_stale` once the database is
    /// gone.
    pub fn new(max_stale: Duration) -> Self {
        metrics::gauge!("auth_database_up").set(1.0);
        Self {
            epoch: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            down: AtomicBool::new(false),
            max_stale,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A round trip succeeded.
    pub fn record_ok(&self) {
        self.last_ok_ms.store(self.now_ms(), Ordering::Relaxed);
        if self.down.swap(false, Ordering::AcqRel) {
            metrics::gauge!("auth_database_up").set(1.0);
            tracing::info!("the database is reachable again");
        }
    }

    /// A round trip failed because the database could not be reached (`cause` is logged once
    /// per outage, never sent).
    pub fn record_unreachable(&self, cause: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            metrics::gauge!("auth_database_up").set(0.0);
            metrics::counter!("auth_database_outages_total").increment(1);
            tracing::warn!(
                cause,
                max_stale_secs = self.max_stale.as_secs(),
                "the database is unreachable: issuing client-credentials tokens from memory, \
                 answering 503 to what needs the database"
            );
        }
    }

    /// Whether the database is known to be unreachable (the breaker is open).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// How long since the last successful round trip.
    pub fn stale_for(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_ok_ms.load(Ordering::Relaxed)),
        )
    }

    /// Whether what is held in memory may still be used: always while the database is up,
    /// and for `max_stale` after the last successful round trip once it is down.
    pub fn memory_usable(&self) -> bool {
        !self.is_down() || self.stale_for() <= self.max_stale
    }

    pub fn max_stale(&self) -> Duration {
        self.max_stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_serves_while_up_and_for_max_stale_once_down() {
        let availability = Availability::new(Duration::from_secs(60));
        availability.record_ok();
        assert!(availability.memory_usable());
        availability.record_unreachable("refused");
        assert!(availability.is_down());
        assert!(availability.memory_usable(), "within max_stale");
        availability.record_ok();
        assert!(!availability.is_down());
    }

    #[test]
    fn with_no_staleness_allowed_memory_stops_serving_as_soon_as_the_database_is_gone() {
        let availability = Availability::new(Duration::ZERO);
        availability.record_ok();
        std::thread::sleep(Duration::from_millis(5));
        availability.record_unreachable("refused");
        assert!(!availability.memory_usable());
    }
}

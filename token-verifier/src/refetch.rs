//! When a token naming an unknown `kid` may cause a JWKS refetch: at once after a quiet spell
//! (an emergency rotation costs no refusals), then no sooner than the minimum interval, and,
//! while refetches keep finding nothing new (made-up `kid`s), at doubling intervals up to the
//! cooldown. The numbers are in the crate documentation.

use std::time::{Duration, Instant};

use crate::config::VerifierConfig;

/// Doublings beyond this change nothing (2^16 × any sane minimum exceeds any sane cooldown).
const MAX_DOUBLINGS: u32 = 16;

/// The state of the unknown-`kid` rate limit. Pure bookkeeping: the caller reads the clock.
#[derive(Debug, Default)]
pub(crate) struct UnknownKidGate {
    /// When the latest unknown-`kid` refetch began.
    last: Option<Instant>,
    /// Unknown-`kid` refetches in a row that did not find the `kid` they were made for.
    fruitless: u32,
}

impl UnknownKidGate {
    /// Whether an unknown-`kid` refetch may begin at `now`.
    pub(crate) fn may_fetch(&mut self, now: Instant, config: &VerifierConfig) -> bool {
        let Some(last) = self.last else {
            return true;
        };
        let since = now.saturating_duration_since(last);
        // Two cooldowns without any unknown-`kid` refetch end a flood: start over at the
        // minimum interval. (A flood at full backoff refetches once per cooldown, so it never
        // gets this quiet.)
        if since >= config.unknown_kid_cooldown.saturating_mul(2) {
            self.fruitless = 0;
        }
        since >= self.wait(config)
    }

    /// The least time between the latest unknown-`kid` refetch and the next one.
    pub(crate) fn wait(&self, config: &VerifierConfig) -> Duration {
        let cooldown = config.unknown_kid_cooldown;
        let doublings = self.fruitless.saturating_sub(1).min(MAX_DOUBLINGS);
        config
            .unknown_kid_min_interval
            .saturating_mul(1 << doublings)
            .min(cooldown)
    }

    pub(crate) fn started(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// Records whether the refetch found the `kid` it was made for.
    pub(crate) fn finished(&mut self, found: bool) {
        self.fruitless = if found {
            0
        } else {
            self.fruitless.saturating_add(1)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_interval_ms: u64, cooldown_ms: u64) -> VerifierConfig {
        let mut config = VerifierConfig::new("http://localhost", "a");
        config.unknown_kid_min_interval = Duration::from_millis(min_interval_ms);
        config.unknown_kid_cooldown = Duration::from_millis(cooldown_ms);
        config
    }

    /// Runs a flood of unknown kids, one attempt per millisecond of `span_ms`, every
    /// refetch fruitless; returns the milliseconds at which refetches began.
    fn flood(config: &VerifierConfig, span_ms: u64) -> Vec<u64> {
        let start = Instant::now();
        let mut gate = UnknownKidGate::default();
        let mut fetches = Vec::new();
        for ms in 0..span_ms {
            let now = start + Duration::from_millis(ms);
            if gate.may_fetch(now, config) {
                gate.started(now);
                gate.finished(false);
                fetches.push(ms);
            }
        }
        fetches
    }

    #[test]
    fn the_first_unknown_kid_refetches_at_once() {
        let mut gate = UnknownKidGate::default();
        assert!(gate.may_fetch(Instant::now(), &config(1000, 5000)));
    }

    #[test]
    fn a_flood_of_made_up_kids_backs_off_from_the_minimum_interval_to_the_cooldown() {
        let fetches = flood(&config(1000, 5000), 30_000);
        assert_eq!(
            fetches,
            [0, 1000, 3000, 7000, 12_000, 17_000, 22_000, 27_000]
        );
    }

    #[test]
    fn a_refetch_that_finds_its_kid_ends_the_backoff() {
        let config = config(1000, 5000);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut gate = UnknownKidGate::default();
        for ms in [0, 1000, 3000] {
            assert!(gate.may_fetch(at(ms), &config));
            gate.started(at(ms));
            gate.finished(false);
        }
        assert_eq!(gate.wait(&config), Duration::from_secs(4));

        assert!(gate.may_fetch(at(7000), &config));
        gate.started(at(7000));
        gate.finished(true);

        assert_eq!(gate.wait(&config), Duration::from_secs(1));
        assert!(!gate.may_fetch(at(7999), &config));
        assert!(gate.may_fetch(at(8000), &config));
    }

    #[test]
    fn two_quiet_cooldowns_end_a_flood() {
        let config = config(1000, 5000);
        let start = Instant::now();
        let mut gate = UnknownKidGate::default();
        for ms in [0, 1000, 3000, 7000, 12_000] {
            let now = start + Duration::from_millis(ms);
            assert!(gate.may_fetch(now, &config));
            gate.started(now);
            gate.finished(false);
        }
        assert_eq!(gate.wait(&config), Duration::from_secs(5));

        assert!(gate.may_fetch(start + Duration::from_millis(22_000), &config));
        assert_eq!(gate.wait(&config), Duration::from_secs(1));
    }

    #[test]
    fn a_zero_cooldown_lifts_the_limit() {
        let fetches = flood(&config(1000, 0), 5);
        assert_eq!(fetches, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_cooldown_shorter_than_the_minimum_interval_wins() {
        let fetches = flood(&config(1000, 300), 1000);
        assert_eq!(fetches, [0, 300, 600, 900]);
    }
}

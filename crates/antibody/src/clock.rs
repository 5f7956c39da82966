//! The engine's wall clock: the system's, or one a test moves by hand. Every window and expiry antibody keeps
//! (grace periods, flap windows, exemptions, quarantines, fix slots, stale claims, alert retries, token times) reads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall time in Unix milliseconds. Cloning shares the clock: a manual clock moved once is moved for every holder.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at the system's time now and moves only when [`Clock::advance`] moves it.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(system_ms()))),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => system_ms(),
        }
    }

    /// Seconds since the Unix epoch: windows and expiries in the journal are compared in these.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves a manual clock forward; the system's clock cannot be moved (a no-op).
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            at.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_for_every_clone() {
        let clock = Clock::manual();
        let shared = clock.clone();
        let start = clock.now_ms();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now_ms(), start, "it stood still");
        shared.advance(Duration::from_secs(90));
        assert_eq!(clock.now_ms(), start + 90_000);
        assert_eq!(clock.now_secs(), (start + 90_000).div_euclid(1000));
    }

    #[test]
    fn the_system_clock_reads_the_present() {
        let clock = Clock::system();
        let before = system_ms();
        clock.advance(Duration::from_secs(3600));
        let now = clock.now_ms();
        assert!(now >= before && now < before + 60_000, "{now} vs {before}");
    }
}

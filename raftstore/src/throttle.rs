//! The rebuild throttle: snapshot chunks an instance sends (to a new replica catching up, or a lagging
//! one) share one byte rate, so copying partitions to a replacement does not starve user traffic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Throttle {
    /// Bytes per second; 0: unlimited.
    rate: u64,
    /// When the next chunk may start: every chunk pushes it by its own length at `rate`.
    next: Mutex<Instant>,
    sent: AtomicU64,
}

impl Throttle {
    pub fn new(rate: u64) -> Throttle {
        Throttle { rate, next: Mutex::new(Instant::now()), sent: AtomicU64::new(0) }
    }

    /// Waits until `bytes` may be sent, and counts them.
    pub async fn acquire(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        if self.rate == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().expect("throttle lock");
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// Snapshot bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_spaced_by_the_rate() {
        let t = Throttle::new(10_000);
        let t0 = Instant::now();
        for _ in 0..4 {
            t.acquire(1000).await;
        }
        // Chunks start at 0, 0.1, 0.2 and 0.3 s.
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        assert_eq!(t.sent(), 4000);
        let free = Throttle::new(0);
        free.acquire(1 << 30).await;
        assert_eq!(free.sent(), 1 << 30);
    }
}

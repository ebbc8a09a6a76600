//! Per-account, per-action request rate limits (the published DTS quotas: 20 requests/s per
//! action; 50/s for Tencent's DescribeMigrateJobs, 40/s for Alibaba's DescribeDtsJobDetail), as
//! token buckets whose burst equals the rate. Both dialects share one throttle: their action
//! names differ, so each keeps its own buckets.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Rate limiters by (account, action).
pub struct Throttle {
    describe: DefaultKeyedRateLimiter<(String, String)>,
    detail: DefaultKeyedRateLimiter<(String, String)>,
    other: DefaultKeyedRateLimiter<(String, String)>,
}

/// Actions with their own, higher quota.
const DESCRIBE_ACTIONS: [&str; 1] = ["DescribeMigrateJobs"];
/// Alibaba's detail calls (40/s per account in the published quota, twice the default).
const DETAIL_ACTIONS: [&str; 2] = ["DescribeDtsJobDetail", "DescribePreCheckStatus"];

impl Throttle {
    pub fn new(per_action_per_sec: u32, describe_per_sec: u32) -> Self {
        let q = |n: u32| Quota::per_second(NonZeroU32::new(n.max(1)).expect("non-zero"));
        Self {
            describe: RateLimiter::keyed(q(describe_per_sec)),
            detail: RateLimiter::keyed(q(per_action_per_sec.saturating_mul(2))),
            other: RateLimiter::keyed(q(per_action_per_sec)),
        }
    }

    /// Whether this request fits within its quota (and consumes one unit if so).
    pub fn admit(&self, account: &str, action: &str) -> bool {
        let limiter = if DESCRIBE_ACTIONS.contains(&action) {
            &self.describe
        } else if DETAIL_ACTIONS.contains(&action) {
            &self.detail
        } else {
            &self.other
        };
        let ok = limiter.check_key(&(account.to_string(), action.to_string())).is_ok();
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        ok
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(20, 50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_quota_is_refused_per_action_and_account() {
        let t = Throttle::default();
        let admitted = (0..40).filter(|_| t.admit("a", "StartMigrateJob")).count();
        assert!((20..=21).contains(&admitted), "{admitted}");
        assert!(t.admit("b", "StartMigrateJob"));
        assert!(t.admit("a", "StopMigrateJob"));
        assert_eq!((0..60).filter(|_| t.admit("a", "DescribeMigrateJobs")).count(), 50);
    }
}

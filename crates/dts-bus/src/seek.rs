//! Finding the first retained event at or after a source time, on any bus: a binary search over
//! stream sequences (NATS) or partition offsets (Kafka) that reads the source time each message
//! carries (`dts-source-ts`).
//!
//! Neither bus's own time index answers the question: NATS's start-time delivery and tansu's
//! ListOffsets use the time a message was *appended*, and Kafka's index uses the record
//! timestamp, which tooling may rewrite. The source time travels in a header instead.
//!
//! Correctness argument. `probe(s)` returns the first message at or after `s` (sequences may
//! have gaps) with its source time, or nothing. Invariant: the answer (the smallest sequence
//! whose message has time ≥ `t`) lies in `[lo, hi)` or is `best`, and `best` is the smallest
//! candidate seen at or beyond `hi`. A probe at `mid` that finds `s'` with time ≥ `t` makes
//! `s'` a candidate and shows that no message exists in `[mid, s')`, so the answer is in
//! `[lo, mid)` or is `s'`: `hi = mid`, `best = s'`. One that finds time < `t` puts every message
//! up to `s'` before `t` (source times are non-decreasing along the stream, which holds for a
//! binlog up to the skew of transactions whose statements started before an earlier commit):
//! `lo = s' + 1`. One that finds nothing empties `[mid, hi)`: `hi = mid`. Each step halves
//! `[lo, hi)`, so a stream of n messages takes about log2(n) probes. With skewed times the result
//! is a boundary: the message found is at or after `t` and the one before it is before `t`.

use std::future::Future;

use crate::error::BusError;

/// The smallest sequence in `[lo, hi)` whose message's source time is at or after `t_ms`;
/// `None` when every retained message is older.
pub async fn first_at_or_after<F, Fut>(lo: u64, hi: u64, t_ms: i64, mut probe: F) -> Result<Option<u64>, BusError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Option<(u64, i64)>, BusError>>,
{
    let (mut lo, mut hi, mut best) = (lo, hi, None);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match probe(mid).await? {
            Some((found, ts)) if ts >= t_ms => {
                best = Some(best.map_or(found, |b: u64| b.min(found)));
                hi = mid;
            }
            Some((found, _)) => lo = found + 1,
            None => hi = mid,
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn search(stream: &[(u64, i64)], t: i64) -> Option<u64> {
        let hi = stream.last().map_or(0, |m| m.0 + 1);
        let lo = stream.first().map_or(0, |m| m.0);
        let mut probes = 0;
        let r = first_at_or_after(lo, hi, t, |s| {
            probes += 1;
            let found = stream.iter().find(|m| m.0 >= s).copied();
            async move { Ok(found) }
        })
        .await
        .unwrap();
        assert!(probes <= 2 + 64 - (hi - lo).leading_zeros() as usize, "{probes} probes");
        r
    }

    #[tokio::test]
    async fn finds_the_first_message_at_or_after_a_time_across_gaps() {
        // Sequences with gaps (deleted messages), times with repeats.
        let stream: Vec<(u64, i64)> = vec![(5, 100), (6, 100), (9, 150), (10, 200), (11, 200), (20, 300), (21, 301)];
        assert_eq!(search(&stream, 0).await, Some(5));
        assert_eq!(search(&stream, 100).await, Some(5));
        assert_eq!(search(&stream, 101).await, Some(9));
        assert_eq!(search(&stream, 200).await, Some(10));
        assert_eq!(search(&stream, 250).await, Some(20));
        assert_eq!(search(&stream, 301).await, Some(21));
        assert_eq!(search(&stream, 302).await, None);
        assert_eq!(search(&[], 1).await, None);
        let long: Vec<(u64, i64)> = (1..=100_000u64).map(|s| (s, (s / 3) as i64)).collect();
        for t in [0, 1, 7, 33_333, 33_334] {
            let want = long.iter().find(|m| m.1 >= t).map(|m| m.0);
            assert_eq!(search(&long, t).await, want, "t={t}");
        }
    }
}

//! The migration job state machine of Tencent DTS 2018-03-30 as one pure transition function.
//!
//! ```text
//! create                         -> 1 Creating
//! CheckRequested   1,4,5,10      -> 3 Checking
//! CheckPassed      3             -> 4 CheckPass
//! CheckFailed      3             -> 5 CheckNotPass
//! Modified         1,4,5,10      -> 1 Creating        (a previous pass no longer counts)
//! Started          4             -> 7 Running
//! CaughtUp         7             -> 8 ReadyComplete   (incremental jobs)
//! Finished         7,12          -> 9 Success         (structure/full jobs end on their own)
//! CompleteRequested 8            -> 12 Completing
//! StopRequested    7,8           -> 11 Stopping
//! Stopped          11            -> 10 Failed
//! Failed           3,7,8,11,12   -> 10 Failed         (3 only when the checker itself broke)
//! Suspend          7,8           -> 13 Suspended      (Alibaba SuspendDtsJob; checkpoints kept)
//! Resume           13            -> 7 Running         (Alibaba StartDtsJob: from the checkpoints)
//! StopRequested    13            -> 11 Stopping
//! Reset            1,4,5,7,8,9,10,13 -> 1 Creating    (Alibaba ResetDtsJob: configure anew)
//! ```
//! 13 is not a Tencent status: the Tencent dialect shows a suspended job as 13 all the same.
//! A change-tracking job takes none of CaughtUp, CompleteRequested and Finished: it publishes
//! until stopped ([`JobStatus::next_for`]).
//! Deleting is not a transition: [`JobStatus::deletable`] says when it is allowed.

use serde::{Deserialize, Serialize};

/// `MigrateJobInfo.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum JobStatus {
    Creating = 1,
    Checking = 3,
    CheckPass = 4,
    CheckNotPass = 5,
    Running = 7,
    ReadyComplete = 8,
    Success = 9,
    Failed = 10,
    Stopping = 11,
    Completing = 12,
    Suspended = 13,
}

/// What happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    CheckRequested,
    CheckPassed,
    CheckFailed,
    Modified,
    Started,
    CaughtUp,
    Finished,
    CompleteRequested,
    StopRequested,
    Stopped,
    Failed,
    Suspend,
    Resume,
    Reset,
}

/// A transition the state machine forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job in status {from:?} cannot take event {event:?}")]
pub struct IllegalTransition {
    pub from: JobStatus,
    pub event: JobEvent,
}

impl JobStatus {
    pub const ALL: [JobStatus; 11] = [
        Self::Creating,
        Self::Checking,
        Self::CheckPass,
        Self::CheckNotPass,
        Self::Running,
        Self::ReadyComplete,
        Self::Success,
        Self::Failed,
        Self::Stopping,
        Self::Completing,
        Self::Suspended,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The one transition function. Pure: persisting the result is the caller's business.
    pub fn next(self, event: JobEvent) -> Result<JobStatus, IllegalTransition> {
        use JobEvent as E;
        use JobStatus as S;
        let to = match (self, event) {
            (S::Creating | S::CheckPass | S::CheckNotPass | S::Failed, E::CheckRequested) => S::Checking,
            (S::Checking, E::CheckPassed) => S::CheckPass,
            (S::Checking, E::CheckFailed) => S::CheckNotPass,
            (S::Creating | S::CheckPass | S::CheckNotPass | S::Failed, E::Modified) => S::Creating,
            (S::CheckPass, E::Started) => S::Running,
            (S::Running, E::CaughtUp) => S::ReadyComplete,
            (S::Running | S::Completing, E::Finished) => S::Success,
            (S::ReadyComplete, E::CompleteRequested) => S::Completing,
            (S::Running | S::ReadyComplete | S::Suspended, E::StopRequested) => S::Stopping,
            (S::Stopping, E::Stopped) => S::Failed,
            (S::Checking | S::Running | S::ReadyComplete | S::Stopping | S::Completing, E::Failed) => S::Failed,
            (S::Running | S::ReadyComplete, E::Suspend) => S::Suspended,
            (S::Suspended, E::Resume) => S::Running,
            (
                S::Creating
                | S::CheckPass
                | S::CheckNotPass
                | S::Running
                | S::ReadyComplete
                | S::Success
                | S::Failed
                | S::Suspended,
                E::Reset,
            ) => S::Creating,
            (from, event) => return Err(IllegalTransition { from, event }),
        };
        Ok(to)
    }

    /// The transition for a job of `kind`: [`JobStatus::next`], less the events the kind does
    /// not take (a change-tracking job never catches up to a cut-over, completes or finishes).
    pub fn next_for(self, kind: crate::JobKind, event: JobEvent) -> Result<JobStatus, IllegalTransition> {
        if !accepts(kind, event) {
            return Err(IllegalTransition { from: self, event });
        }
        self.next(event)
    }

    /// `DeleteMigrateJob` is refused while a job checks, runs, stops or completes.
    pub fn deletable(self) -> bool {
        !matches!(self, Self::Checking | Self::Running | Self::ReadyComplete | Self::Stopping | Self::Completing)
    }

    /// `ModifyMigrateJob` is allowed in 1, 4, 5 and 10.
    pub fn modifiable(self) -> bool {
        self.next(JobEvent::Modified).is_ok()
    }

    /// Statuses in which the engine owns the job and must drive it forward after a restart.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Checking | Self::Running | Self::ReadyComplete | Self::Stopping | Self::Completing)
    }
}

/// Whether a job of `kind` ever takes `event`.
pub fn accepts(kind: crate::JobKind, event: JobEvent) -> bool {
    !matches!(
        (kind, event),
        (crate::JobKind::ChangeTracking, JobEvent::CaughtUp | JobEvent::CompleteRequested | JobEvent::Finished)
    )
}

impl From<JobStatus> for i64 {
    fn from(s: JobStatus) -> i64 {
        s.code()
    }
}

impl TryFrom<i64> for JobStatus {
    type Error = String;
    fn try_from(code: i64) -> Result<Self, String> {
        Self::from_code(code).ok_or_else(|| format!("unknown job status {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobEvent as E;
    use JobStatus as S;

    /// Every legal pair; everything else must be illegal.
    const LEGAL: &[(JobStatus, JobEvent, JobStatus)] = &[
        (S::Creating, E::CheckRequested, S::Checking),
        (S::CheckPass, E::CheckRequested, S::Checking),
        (S::CheckNotPass, E::CheckRequested, S::Checking),
        (S::Failed, E::CheckRequested, S::Checking),
        (S::Checking, E::CheckPassed, S::CheckPass),
        (S::Checking, E::CheckFailed, S::CheckNotPass),
        (S::Creating, E::Modified, S::Creating),
        (S::CheckPass, E::Modified, S::Creating),
        (S::CheckNotPass, E::Modified, S::Creating),
        (S::Failed, E::Modified, S::Creating),
        (S::CheckPass, E::Started, S::Running),
        (S::Running, E::CaughtUp, S::ReadyComplete),
        (S::Running, E::Finished, S::Success),
        (S::Completing, E::Finished, S::Success),
        (S::ReadyComplete, E::CompleteRequested, S::Completing),
        (S::Running, E::StopRequested, S::Stopping),
        (S::ReadyComplete, E::StopRequested, S::Stopping),
        (S::Stopping, E::Stopped, S::Failed),
        (S::Checking, E::Failed, S::Failed),
        (S::Running, E::Failed, S::Failed),
        (S::ReadyComplete, E::Failed, S::Failed),
        (S::Stopping, E::Failed, S::Failed),
        (S::Completing, E::Failed, S::Failed),
        (S::Suspended, E::StopRequested, S::Stopping),
        (S::Running, E::Suspend, S::Suspended),
        (S::ReadyComplete, E::Suspend, S::Suspended),
        (S::Suspended, E::Resume, S::Running),
        (S::Creating, E::Reset, S::Creating),
        (S::CheckPass, E::Reset, S::Creating),
        (S::CheckNotPass, E::Reset, S::Creating),
        (S::Running, E::Reset, S::Creating),
        (S::ReadyComplete, E::Reset, S::Creating),
        (S::Failed, E::Reset, S::Creating),
        (S::Success, E::Reset, S::Creating),
        (S::Suspended, E::Reset, S::Creating),
    ];

    const EVENTS: [JobEvent; 14] = [
        E::CheckRequested,
        E::CheckPassed,
        E::CheckFailed,
        E::Modified,
        E::Started,
        E::CaughtUp,
        E::Finished,
        E::CompleteRequested,
        E::StopRequested,
        E::Stopped,
        E::Failed,
        E::Suspend,
        E::Resume,
        E::Reset,
    ];

    #[test]
    fn every_status_and_event_pair_is_legal_exactly_when_the_table_says_so() {
        for from in JobStatus::ALL {
            for event in EVENTS {
                let expected = LEGAL.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to);
                match (from.next(event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} + {event:?}"),
                    (Err(err), None) => assert_eq!(err, IllegalTransition { from, event }),
                    (got, want) => panic!("{from:?} + {event:?}: got {got:?}, table says {want:?}"),
                }
            }
        }
    }

    #[test]
    fn each_kind_takes_exactly_its_events() {
        use crate::JobKind as K;
        const REFUSED: &[(K, JobEvent)] = &[
            (K::ChangeTracking, E::CaughtUp),
            (K::ChangeTracking, E::CompleteRequested),
            (K::ChangeTracking, E::Finished),
        ];
        for kind in K::ALL {
            for event in EVENTS {
                let refused = REFUSED.contains(&(kind, event));
                assert_eq!(accepts(kind, event), !refused, "{kind:?} {event:?}");
                for from in JobStatus::ALL {
                    match from.next_for(kind, event) {
                        Ok(to) => assert_eq!(Ok(to), from.next(event), "{kind:?} {from:?} {event:?}"),
                        Err(_) => assert!(refused || from.next(event).is_err(), "{kind:?} {from:?} {event:?}"),
                    }
                }
            }
        }
        assert_eq!(
            S::Running.next_for(K::ChangeTracking, E::CaughtUp),
            Err(IllegalTransition { from: S::Running, event: E::CaughtUp })
        );
    }

    #[test]
    fn success_is_terminal_but_for_a_reset() {
        for event in EVENTS.into_iter().filter(|e| *e != E::Reset) {
            assert!(S::Success.next(event).is_err());
        }
        assert_eq!(S::Success.next(E::Reset), Ok(S::Creating));
    }

    #[test]
    fn delete_is_refused_exactly_in_3_7_8_11_12() {
        let refused: Vec<i64> = JobStatus::ALL.into_iter().filter(|s| !s.deletable()).map(JobStatus::code).collect();
        assert_eq!(refused, vec![3, 7, 8, 11, 12]);
    }

    #[test]
    fn modify_is_allowed_exactly_in_1_4_5_10() {
        let allowed: Vec<i64> = JobStatus::ALL.into_iter().filter(|s| s.modifiable()).map(JobStatus::code).collect();
        assert_eq!(allowed, vec![1, 4, 5, 10]);
    }

    #[test]
    fn status_codes_round_trip_through_json() {
        for s in JobStatus::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, s.code().to_string());
            assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), s);
        }
        assert!(serde_json::from_str::<JobStatus>("2").is_err());
    }
}

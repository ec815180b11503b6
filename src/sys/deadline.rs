//! Deadlines: the one way a wait says when to give up.

use std::time::{Duration, Instant};

/// A point in time to give up at; [`Deadline::NEVER`] waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline.
    pub(crate) const NEVER: Self = Self(None);

    /// A deadline `timeout` from now (`None`: never). A timeout too large to represent is
    /// taken as a hundred years.
    pub(crate) fn after(timeout: Option<Duration>) -> Self {
        Self(timeout.map(|t| {
            let now = Instant::now();
            now.checked_add(t)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
        }))
    }

    /// A deadline at `instant` (`None`: never).
    pub(crate) fn at(instant: Option<Instant>) -> Self {
        Self(instant)
    }

    /// Time left: `None` for no deadline, `Some(ZERO)` once it has passed.
    pub(crate) fn left(self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(self) -> bool {
        self.left().is_some_and(|l| l.is_zero())
    }

    /// Whether there is one.
    pub(crate) fn is_some(self) -> bool {
        self.0.is_some()
    }

    /// The earlier of two deadlines.
    pub(crate) fn min(self, other: Self) -> Self {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Self(Some(a.min(b))),
            (a, b) => Self(a.or(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_compare_and_pass() {
        assert!(Deadline::after(Some(Duration::ZERO)).passed());
        assert!(!Deadline::NEVER.passed());
        assert_eq!(Deadline::NEVER.left(), None);
        let soon = Deadline::after(Some(Duration::from_secs(1)));
        assert_eq!(soon.min(Deadline::NEVER), soon);
        assert!(Deadline::after(Some(Duration::MAX)).is_some());
    }
}

//! A bounded record of what happened, newest kept: audit entries and delivery attempts, so that a sandbox left
//! running (a load benchmark, a long demo) stays within bounded memory.

use std::collections::VecDeque;

/// How much a sandbox remembers by default: audit entries, finished operations, delivery attempts (each).
pub const DEFAULT_HISTORY: usize = 10_000;

/// The most recent `capacity` items, oldest first; pushing onto a full history forgets the oldest.
#[derive(Debug, Clone)]
pub(crate) struct History<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T: Clone> History<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        History {
            items: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_history_forgets_the_oldest_first() {
        let mut history = History::new(3);
        for item in 1..=5 {
            history.push(item);
        }
        assert_eq!(history.to_vec(), [3, 4, 5]);
        assert_eq!(history.len(), 3);
        assert_eq!(History::<u8>::new(0).capacity, 1, "never zero");
    }
}

//! Bounded concurrency for sweeps: at most N tasks alive at once, created only as slots free up.

/// Runs `task` on every item, at most `limit` at once, calling `done` as each finishes; the answers in the items'
/// order (`None` for a task that panicked).
pub(super) async fn bounded<T, O, Fut>(
    items: Vec<T>,
    limit: usize,
    mut done: impl FnMut(&O),
    task: impl Fn(T) -> Fut,
) -> Vec<Option<O>>
where
    Fut: std::future::Future<Output = O> + Send + 'static,
    O: Send + 'static,
{
    let mut answers: Vec<Option<O>> = Vec::with_capacity(items.len());
    answers.resize_with(items.len(), || None);
    let indexed: Vec<(usize, T)> = items.into_iter().enumerate().collect();
    bounded_each(
        indexed,
        limit,
        |(index, answer)| {
            done(&answer);
            answers[index] = Some(answer);
        },
        |(index, item)| {
            let job = task(item);
            async move { (index, job.await) }
        },
    )
    .await;
    answers
}

/// Runs `task` on every item, at most `limit` at once, handing each answer to `done` as it finishes (in no
/// particular order) and keeping none; how many tasks panicked.
pub(super) async fn bounded_each<T, O, Fut>(
    items: Vec<T>,
    limit: usize,
    mut done: impl FnMut(O),
    task: impl Fn(T) -> Fut,
) -> usize
where
    Fut: std::future::Future<Output = O> + Send + 'static,
    O: Send + 'static,
{
    let mut running = tokio::task::JoinSet::new();
    let mut failed = 0;
    let mut collect = |joined: Result<O, tokio::task::JoinError>| match joined {
        Ok(answer) => done(answer),
        Err(_) => failed += 1,
    };
    for item in items {
        // Tasks are created only as slots free up, so memory stays flat however many items there are.
        while running.len() >= limit.max(1) {
            if let Some(joined) = running.join_next().await {
                collect(joined);
            }
        }
        running.spawn(task(item));
    }
    while let Some(joined) = running.join_next().await {
        collect(joined);
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn bounded_keeps_the_items_order_and_never_runs_more_than_its_limit() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut finished = 0;
        let answers = bounded(
            (0..40u64).collect(),
            3,
            |_| finished += 1,
            |item| {
                let running = running.clone();
                let most = most.clone();
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Later items finish sooner: the answers must still come back in the items' order.
                    tokio::time::sleep(std::time::Duration::from_millis(40 - item)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    item * 2
                }
            },
        )
        .await;
        assert_eq!(
            answers,
            (0..40u64).map(|item| Some(item * 2)).collect::<Vec<_>>()
        );
        assert_eq!(finished, 40);
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}

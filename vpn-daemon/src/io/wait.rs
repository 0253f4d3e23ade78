//! Small waiting helpers the event loops share: an optional future or
//! deadline that, when absent, never fires, so a `select!` arm can be
//! written once whether or not the thing it waits for exists.

/// Awaits `f` if there is one; otherwise never completes.
pub(crate) async fn or_never<F: Future>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<std::time::Instant>) {
    or_never(deadline.map(|d| tokio::time::sleep_until(d.into()))).await;
}

//! The sleep of a channel's HTTP/2 keepalive (`http2.rs`), on tokio's timer wheel, which costs next
//! to nothing to poll again.
//!
//! The connection's task polls the keepalive's sleep each time it runs, which is several times per
//! call, and its deadline is seconds away. Passing each of those polls to tokio's `Sleep` costs a
//! budget check and a waker registration each time (about 400 instructions per call at 1 in flight
//! with hyper's keepalive: BENCHMARKS.md, finding 27). The sleep here asks tokio only when it must:
//! the first poll after it was made or reset, a poll by another task's waker, and the poll after
//! tokio fired the timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A tokio `Sleep` that remembers the waker its timer holds.
///
/// `armed` is the waker of the last poll that left the timer registered (tokio's `Sleep` returned
/// `Pending` outside any task budget, so its timer entry is in the wheel and holds that waker). A
/// poll with a waker that wakes the same task, while the timer is still in the wheel, returns
/// `Pending` at once: tokio will wake that task when the deadline passes, and then the timer is no
/// longer registered, so that poll goes to tokio and sees the sleep elapsed.
pub(super) struct KeepaliveSleep {
    inner: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Waker>,
}

impl KeepaliveSleep {
    /// A sleep until `deadline` (made on a runtime with a timer).
    pub(super) fn until(deadline: Instant) -> Self {
        KeepaliveSleep {
            inner: Box::pin(tokio::time::sleep_until(deadline.into())),
            armed: None,
        }
    }

    pub(super) fn reset(&mut self, deadline: Instant) {
        self.inner.as_mut().reset(deadline.into());
        self.armed = None;
    }
}

impl Future for KeepaliveSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let waits = this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !this.inner.is_elapsed();
        if waits {
            return Poll::Pending;
        }
        // Outside the task's budget: a `Pending` from tokio then always means a registered timer
        // (with the budget spent, tokio returns `Pending` without registering).
        let polled = Pin::new(&mut tokio::task::coop::unconstrained(this.inner.as_mut())).poll(cx);
        this.armed = match polled {
            Poll::Pending => Some(cx.waker().clone()),
            Poll::Ready(()) => None,
        };
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Runs `f` on a current-thread runtime, failing the test (instead of hanging it) when it has
    /// not finished after 10 s: a sleep that missed its wake-up never finishes.
    fn finishes(f: impl Future<Output = ()>) {
        runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), f)
                .await
                .expect("the sleep never fired (its wake-up was lost)")
        })
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(20)
    }

    /// A waker that only counts its wake-ups.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_sleep_polled_again_and_again_by_its_task_still_fires() {
        finishes(async {
            let mut sleep = KeepaliveSleep::until(soon());
            // Poll it as the keepalive does, on every poll of the connection: the task wakes itself and
            // polls again, thousands of times before the deadline.
            let mut polls = 0u32;
            std::future::poll_fn(|cx| {
                polls += 1;
                match Pin::new(&mut sleep).poll(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            })
            .await;
            assert!(polls > 1, "the sleep was ready at its first poll");
        });
    }

    #[test]
    fn a_sleep_waits_for_its_deadline_and_wakes_the_task_once_it_passed() {
        let rt = runtime();
        let _entered = rt.enter();
        let counting = Arc::new(Counting::default());
        let waker = Waker::from(counting.clone());
        let mut cx = Context::from_waker(&waker);
        let mut sleep = KeepaliveSleep::until(Instant::now() + Duration::from_secs(3600));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        // Polled again with the same waker: answered without tokio, and still pending.
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        sleep.reset(soon());
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        // Drive the runtime's timer until the sleep wakes the waker it was last given.
        rt.block_on(async {
            let woken = async {
                while counting.0.load(Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), woken)
                .await
                .expect("the reset sleep never woke its task")
        });
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_ready());
    }

    #[test]
    fn a_sleep_reset_to_an_earlier_deadline_after_it_was_polled_fires_then() {
        finishes(async {
            let mut sleep = KeepaliveSleep::until(Instant::now() + Duration::from_secs(3600));
            std::future::poll_fn(|cx| {
                assert!(Pin::new(&mut sleep).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            sleep.reset(soon());
            sleep.await;
        });
    }

    #[test]
    fn a_sleep_moved_to_another_task_wakes_that_task() {
        finishes(async {
            let mut sleep = KeepaliveSleep::until(soon());
            // Armed with this task's waker...
            std::future::poll_fn(|cx| {
                assert!(Pin::new(&mut sleep).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            // ...then awaited by another task: that task must be the one woken.
            let done = Arc::new(AtomicBool::new(false));
            let flag = done.clone();
            tokio::spawn(async move {
                sleep.await;
                flag.store(true, Ordering::SeqCst);
            })
            .await
            .unwrap();
            assert!(done.load(Ordering::SeqCst));
        });
    }

    #[test]
    fn a_sleep_first_polled_by_a_task_out_of_budget_still_fires() {
        finishes(async {
            let mut sleep = KeepaliveSleep::until(soon());
            // Spend the task's budget, then poll the sleep in the same poll: tokio's own sleep
            // returns `Pending` without registering its timer, and a sleep that took that for
            // armed would never fire.
            std::future::poll_fn(|cx| {
                while let Poll::Ready(spent) = tokio::task::coop::poll_proceed(cx) {
                    spent.made_progress();
                }
                assert!(!tokio::task::coop::has_budget_remaining());
                assert!(Pin::new(&mut sleep).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            sleep.await;
        });
    }
}

//! A connection's large writes collected until the end of the connection task's poll and written
//! together.
//!
//! h2 writes a DATA frame larger than a few hundred bytes as its own `writev` (frame head and
//! payload) and flushes after each: a 1 MiB request to a server that takes 16 KiB frames (jina
//! 3.1.0's gRPC server, tonic's) is 67 system calls, and as many TCP segments and wake-ups of the
//! server. Here writes of at least [`COLLECT_FROM`] bytes are copied into one buffer during a poll
//! of the channel task (`runtime::channel_task_poll`) and written when [`WRITE_AT`] bytes are
//! waiting, or in the task's next poll, which a flush asks for by waking the task. Smaller writes
//! (h2 gathers small frames in its own buffer) and writes outside a channel task's poll go straight
//! through, after whatever is waiting: the bytes keep their order.
//!
//! The copy costs less than the system calls it saves (BENCHMARKS.md); the buffer is kept for the
//! connection's life once used (at most `WRITE_AT` bytes, plus one write).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::runtime::channel_task_poll;

/// Writes at least this large are collected.
const COLLECT_FROM: usize = 8 * 1024;
/// Collected bytes are written once this many wait.
const WRITE_AT: usize = 128 * 1024;

/// An I/O stream whose large writes are collected (see the module documentation).
pub(crate) struct Coalescing<T> {
    io: T,
    /// Bytes collected; `buf[sent..]` are not written yet.
    buf: Vec<u8>,
    sent: usize,
    /// The channel-task poll whose flush put the write off to the next poll.
    put_off_in: Option<u64>,
}

impl<T> Coalescing<T> {
    pub(crate) fn new(io: T) -> Coalescing<T> {
        Coalescing {
            io,
            buf: Vec::new(),
            sent: 0,
            put_off_in: None,
        }
    }

    fn waiting(&self) -> usize {
        self.buf.len() - self.sent
    }
}

impl<T: AsyncWrite + Unpin> Coalescing<T> {
    /// Writes every collected byte.
    fn poll_write_collected(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        self.put_off_in = None;
        Poll::Ready(Ok(()))
    }

    /// Collects `bufs` (`total` bytes) when they are worth collecting; `None`: write them through.
    fn poll_collect(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        total: usize,
    ) -> Poll<io::Result<Option<usize>>> {
        let collect = channel_task_poll().is_some() && (total >= COLLECT_FROM || self.waiting() > 0);
        if !collect || self.waiting() + total > WRITE_AT {
            // The waiting bytes go first: written through, or to make room.
            ready!(self.poll_write_collected(cx))?;
            if !collect || total >= WRITE_AT {
                return Poll::Ready(Ok(None));
            }
        }
        self.buf.reserve(total);
        for b in bufs {
            self.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(Some(total)))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalescing<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match ready!(self.poll_collect(cx, &[io::IoSlice::new(buf)], buf.len()))? {
            Some(n) => Poll::Ready(Ok(n)),
            None => Pin::new(&mut self.io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|b| b.len()).sum();
        match ready!(self.poll_collect(cx, bufs, total))? {
            Some(n) => Poll::Ready(Ok(n)),
            None => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// Within a channel task's poll, a flush of fewer than `WRITE_AT` collected bytes is put off to
    /// the task's next poll (the task wakes itself for it), so the frames of that poll go together.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.waiting() > 0 && self.waiting() < WRITE_AT {
            if let Some(poll) = channel_task_poll() {
                match self.put_off_in {
                    Some(p) if p == poll => return Poll::Ready(Ok(())),
                    None => {
                        self.put_off_in = Some(poll);
                        cx.waker().wake_by_ref();
                        return Poll::Ready(Ok(()));
                    }
                    Some(_) => {} // put off in an earlier poll: write now
                }
            }
        }
        ready!(self.poll_write_collected(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_collected(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalescing<T> {
    /// Bytes put off in an earlier poll are written first (the connection reads in every poll, so
    /// they never wait for a flush that does not come); a write that cannot go on now waits for
    /// the socket and wakes the task.
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let earlier = self.put_off_in.is_some() && self.put_off_in != channel_task_poll();
        if earlier {
            if let Poll::Ready(Err(e)) = self.poll_write_collected(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ChannelExecutor;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;

    /// A sink that records the size of each write it takes.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<usize>>>,
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes.lock().unwrap().push(buf.len());
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// What h2 does with a large request: frames of 16 KiB, each written and flushed, then a small
    /// one; returns the bytes as they were meant to be written.
    async fn write_frames(io: &mut Coalescing<Recorder>) -> Vec<u8> {
        let mut expected = Vec::new();
        for i in 0..20u8 {
            let frame = vec![i; 16 * 1024];
            io.write_all(&frame).await.unwrap();
            io.flush().await.unwrap();
            expected.extend_from_slice(&frame);
        }
        io.write_all(b"end").await.unwrap();
        io.flush().await.unwrap();
        expected.extend_from_slice(b"end");
        expected
    }

    fn run_in_channel_task(flavor_multi: bool) -> (Vec<usize>, bool) {
        let rt = if flavor_multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread().build().unwrap()
        };
        let recorder = Recorder::default();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut io = Coalescing::new(recorder.clone());
        ChannelExecutor::new(rt.handle()).spawn(Box::pin(async move {
            let expected = write_frames(&mut io).await;
            // The last bytes were put off to the task's next poll: let it come.
            while io.waiting() > 0 {
                let mut none = [0u8; 1];
                let mut read = ReadBuf::new(&mut none);
                std::future::poll_fn(|cx| {
                    let _ = Pin::new(&mut io).poll_read(cx, &mut read);
                    Poll::Ready(())
                })
                .await;
                tokio::task::yield_now().await;
            }
            done_tx.send(expected).unwrap();
        }));
        let expected = if flavor_multi {
            done_rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()
        } else {
            rt.block_on(async {
                loop {
                    if let Ok(e) = done_rx.try_recv() {
                        break e;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let writes = recorder.writes.lock().unwrap().clone();
        let same = *recorder.bytes.lock().unwrap() == expected;
        (writes, same)
    }

    /// Within a channel task, 16 KiB frames flushed one by one are written 128 KiB at a time, in order.
    #[test]
    fn large_writes_in_a_channel_task_are_written_together() {
        for multi in [true, false] {
            let (writes, same) = run_in_channel_task(multi);
            assert!(same, "the bytes came out changed or reordered");
            assert!(writes.len() <= 4, "{} writes: {writes:?}", writes.len());
            assert!(writes.iter().all(|&w| w <= WRITE_AT + 16 * 1024), "{writes:?}");
        }
    }

    /// Outside a channel task's poll nothing is collected: every write goes through.
    #[test]
    fn writes_outside_a_channel_task_go_through() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let recorder = Recorder::default();
        let mut io = Coalescing::new(recorder.clone());
        let expected = rt.block_on(write_frames(&mut io));
        assert_eq!(recorder.writes.lock().unwrap().len(), 21);
        assert_eq!(*recorder.bytes.lock().unwrap(), expected);
    }
}

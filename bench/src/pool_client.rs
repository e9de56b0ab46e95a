//! The Rust pool client (`jina-net-bench client kind=pool ...`): libjina_net's Rust API,
//! `ConnectionPool::send_requests(..).await`, driven by tasks on the library's own runtime, as a
//! Rust gateway would. The cell's loop and RESULT line are `clients.rs`'s.

use jina_net::{ConnectionPool, Polling, Request, SendOptions, To};

use crate::clients::{warm_then_measure, Setup};

pub fn run(setup: Setup) {
    let Setup {
        args,
        addrs,
        all,
        payload,
        min_len,
        ..
    } = setup;
    let pool = ConnectionPool::default();
    if all {
        for (i, a) in addrs.iter().enumerate() {
            pool.add_connection("bench", a, false, Some(i as u32))
                .expect("add_connection");
        }
    } else {
        pool.add_connection("bench", &addrs[0], false, None)
            .expect("add_connection");
    }
    let polling = if all { Polling::All } else { Polling::Any };
    let request = Request::data(payload);
    let handle = jina_net::runtime::handle().expect("library runtime");
    handle.block_on(async {
        warm_then_measure(&args, min_len, move || {
            let send = pool.send_requests(
                std::slice::from_ref(&request),
                "bench",
                To::jina(false, None, polling),
                &SendOptions::default(),
            );
            async move {
                let mut len = usize::MAX;
                for target in send.map_err(|e| e.to_string())?.await {
                    len = len.min(target.result.map_err(|e| e.to_string())?.body.len());
                }
                Ok(len)
            }
        })
        .await
    });
}

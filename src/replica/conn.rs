//! The connection of a replica: its channel, and the slot that holds the current one, which is
//! replaced (the calls pending on the old one ended) when the replica stopped answering.

use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;

use crate::address::Address;
use crate::error::Result;
use crate::policy::ConnectionOptions;
use crate::runtime::Signal;
use crate::transport::{get_grpc_channel_on, GrpcChannel};

/// One connection: its channel, and the signal that ends the calls on it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) channel: GrpcChannel,
    pub(crate) lost: Signal,
}

/// A replica's current connection, and what a new one is opened with.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    current: RwLock<Arc<Conn>>,
    pub(crate) address: Address,
    pub(crate) options: ConnectionOptions,
    pub(crate) runtime: Handle,
}

impl ConnSlot {
    /// Opens (lazily) the first connection.
    pub(crate) fn open(runtime: &Handle, address: Address, options: &ConnectionOptions) -> Result<Self> {
        let channel = get_grpc_channel_on(runtime, &address, options)?;
        Ok(ConnSlot {
            current: RwLock::new(Arc::new(Conn {
                channel,
                lost: Signal::new(),
            })),
            address,
            options: options.clone(),
            runtime: runtime.clone(),
        })
    }

    /// The current connection.
    pub(crate) fn get(&self) -> Arc<Conn> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces `old` (if it is still the current connection) by a new one, and ends the calls
    /// pending on `old`.
    pub(crate) fn replace(&self, old: &Arc<Conn>) {
        if let Ok(channel) = get_grpc_channel_on(&self.runtime, &self.address, &self.options) {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&current, old) {
                *current = Arc::new(Conn {
                    channel,
                    lost: Signal::new(),
                });
            }
        }
        old.lost.fire();
    }
}

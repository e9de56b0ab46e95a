//! Choosing a replica: jina's round-robin list, the power of two choices over load, the order
//! fail-over and hedges follow, and in-flight slot acquisition.

pub(crate) mod order;
mod p2c;
mod replica_list;
mod slots;

pub(crate) use p2c::cheapest;
pub use replica_list::{Pick, ReplicaList};
pub(crate) use slots::{acquire, NoSlot};

//! `jina_net_pool_add_connection_ex`: add a replica with per-address settings.

use std::ffi::c_char;

use super::args::{self, JINA_NET_NO_SHARD};
use super::pool::{jina_net_pool, pool_ref};
use super::result::{boundary, jina_net_result, Failure};
use super::sized::{read_sized, write_sized, SizedStruct};
use crate::pool::AddOptions;

/// Where a replica goes and how it is reached. Initialise with `jina_net_add_options_init(&o, sizeof o)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_add_options {
    /// `sizeof(jina_net_add_options)` in the caller's header; set by `jina_net_add_options_init`.
    pub struct_size: usize,
    /// The deployment's head instead of a shard (default false).
    pub head: bool,
    /// The shard (default `JINA_NET_NO_SHARD` = shard 0); ignored for a head.
    pub shard_id: i64,
    /// The name this replica's TLS certificate must carry (and the SNI sent) instead of the host of
    /// its address (default NULL = the pool's `tls_server_name`, else the host).
    pub tls_server_name: *const c_char,
}

// SAFETY: a `#[repr(C)]` struct starting with `struct_size`; integers, bools and pointers.
unsafe impl SizedStruct for jina_net_add_options {
    const NAME: &'static str = "jina_net_add_options";
    const INIT: &'static str = "jina_net_add_options_init";
}

fn defaults() -> jina_net_add_options {
    jina_net_add_options {
        struct_size: std::mem::size_of::<jina_net_add_options>(),
        head: false,
        shard_id: JINA_NET_NO_SHARD,
        tls_server_name: std::ptr::null(),
    }
}

/// Fills the caller's `struct_size` bytes at `options` with the defaults (shard 0, no TLS server
/// name of its own) and sets `options->struct_size`.
///
/// # Safety
/// `options` must be NULL or point to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn jina_net_add_options_init(
    options: *mut jina_net_add_options,
    struct_size: usize,
) -> jina_net_result {
    boundary("jina_net_add_options_init", || {
        // SAFETY: the caller gives `struct_size` writable bytes.
        unsafe { write_sized(options, struct_size, defaults()) }
    })
}

/// `jina_net_pool_add_connection` with the settings of `options` (NULL = the defaults). A
/// `dns:///host:port` address (also with `jina_net_pool_add_connection`) adds one replica per address
/// the name resolves to and follows the name (`jina_net_pool_options.dns_refresh_ms`); `*out_added`
/// (may be NULL) says whether anything was added. A `unix:path` (relative or absolute) or `unix:///abs/path` address is a Unix domain socket.
///
/// # Safety
/// `pool` live; strings NUL-terminated; `options` NULL or a struct of `struct_size` bytes;
/// `out_added` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_add_connection_ex(
    pool: *mut jina_net_pool,
    deployment: *const c_char,
    address: *const c_char,
    options: *const jina_net_add_options,
    out_added: *mut bool,
) -> jina_net_result {
    boundary("jina_net_pool_add_connection_ex", || {
        // SAFETY: the caller's promises.
        let (pool, deployment, address) = unsafe {
            (
                pool_ref(pool)?,
                args::string(deployment, "deployment")?,
                args::string(address, "address")?,
            )
        };
        let o = if options.is_null() {
            defaults()
        } else {
            // SAFETY: a struct with `struct_size` readable bytes.
            unsafe { read_sized(options, defaults()) }?
        };
        // SAFETY: NULL or NUL-terminated.
        let name = unsafe { args::optional_string(o.tls_server_name, "tls_server_name") }?;
        if let Some(n) = name {
            crate::transport::check_tls(&crate::policy::TlsOptions {
                server_name: Some(n.to_owned()),
                ..Default::default()
            })?;
        }
        let add = AddOptions {
            head: o.head,
            shard_id: args::shard_id(o.shard_id)?,
            tls_server_name: name,
        };
        let added = pool
            .pool
            .add_connection_with(deployment, address, &add)
            .map_err(Failure::from)?;
        if let Some(out) = args::out_optional(out_added) {
            *out = added;
        }
        Ok(())
    })
}

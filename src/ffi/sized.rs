//! Structs a caller allocates and the library fills or reads (options): each starts with
//! `size_t struct_size`, the size of the struct in the caller's header. The library reads and writes
//! only that many bytes, so a binary built against an older (smaller) or newer (larger) header keeps
//! working (the rule of Linux's `copy_struct_from_user`):
//! - a field past the caller's `struct_size` (the caller's header is older) takes its default;
//! - bytes past the library's own size (the caller's header is newer) must be zero — fields this
//!   library does not know, left unset — else the call fails with `JINA_NET_UNSUPPORTED`, naming
//!   the struct and the byte, instead of ignoring a setting the caller asked for.
//!
//! New fields are only ever appended, each starting at or after the struct's previous size.

use std::mem::size_of;

use super::result::{jina_net_result::*, Failure};

/// A C options struct whose first field is `size_t struct_size`.
///
/// # Safety
/// Implementors are `#[repr(C)]` structs whose first field is a `usize` named `struct_size`, and every
/// bit pattern a C caller may legitimately store in their other fields is valid for them.
pub(crate) unsafe trait SizedStruct: Copy {
    /// The C name of the struct, for messages.
    const NAME: &'static str;
    /// The function that initialises it, for messages.
    const INIT: &'static str;
}

/// Fills the caller's `size` bytes at `ptr` with `value` (its `struct_size` set to `size`), writing
/// zeros past the library's own size. `JINA_NET_INVALID_ARGUMENT` when `size` cannot hold even
/// `struct_size`.
///
/// # Safety
/// `ptr` points to `size` writable bytes (the caller's struct).
pub(crate) unsafe fn write_sized<T: SizedStruct>(ptr: *mut T, size: usize, value: T) -> Result<(), Failure> {
    let ptr = ptr.cast::<u8>();
    if ptr.is_null() {
        return Err(Failure::null(T::NAME));
    }
    if size < size_of::<usize>() {
        return Err(too_small::<T>(size));
    }
    let own = size_of::<T>();
    let n = own.min(size);
    // SAFETY: `value` is `own` readable bytes; the caller gives `size` writable bytes at `ptr`.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), ptr, n);
        if size > own {
            std::ptr::write_bytes(ptr.add(own), 0, size - own);
        }
        std::ptr::copy_nonoverlapping((&size as *const usize).cast::<u8>(), ptr, size_of::<usize>());
    }
    Ok(())
}

/// Reads the caller's struct at `ptr` over `defaults`: the first `struct_size` bytes (at most the
/// library's own size) are the caller's, the rest stay defaults. Fails when `struct_size` is too
/// small to be real, or when bytes past the library's own size are not zero.
///
/// # Safety
/// `ptr` points to a struct whose first `size_t` says how many readable bytes it has.
pub(crate) unsafe fn read_sized<T: SizedStruct>(ptr: *const T, defaults: T) -> Result<T, Failure> {
    let bytes = ptr.cast::<u8>();
    // SAFETY: every version of the struct starts with `size_t struct_size`.
    let size = unsafe { bytes.cast::<usize>().read_unaligned() };
    if size < size_of::<usize>() {
        return Err(too_small::<T>(size));
    }
    let own = size_of::<T>();
    if size > own {
        // SAFETY: the caller's struct has `size` readable bytes.
        let extra = unsafe { std::slice::from_raw_parts(bytes.add(own), size - own) };
        if let Some(at) = extra.iter().position(|&b| b != 0) {
            return Err(Failure::new(
                JINA_NET_UNSUPPORTED,
                format!(
                    "{}: byte {} is set, but this library (version {}) knows only the first {own} bytes of the struct ({size} in the caller's header): a setting of a newer version; leave it zero or use a newer library",
                    T::NAME,
                    own + at,
                    env!("CARGO_PKG_VERSION"),
                ),
            ));
        }
    }
    let mut out = defaults;
    // SAFETY: `min(size, own)` bytes are readable at `ptr` and writable in `out`; the trait promises
    // the caller's bit patterns are valid for `T`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes, (&mut out as *mut T).cast::<u8>(), size.min(own));
    }
    Ok(out)
}

fn too_small<T: SizedStruct>(size: usize) -> Failure {
    Failure::new(
        JINA_NET_INVALID_ARGUMENT,
        format!(
            "{}.struct_size is {size}: initialise the struct with {}(&options, sizeof options)",
            T::NAME,
            T::INIT
        ),
    )
}

//! The allocator of the library: the system's `malloc`, except that blocks it serves slowly, freed
//! while the C ABI is in use, are kept for reuse instead of going back to it: large blocks (128 KiB
//! and up; up to 32 blocks and 64 MiB in all) and mid-size ones (over 1 KiB, or aligned beyond 16
//! bytes; up to 256 per class and 4 MiB in all).
//!
//! Why: with large messages (1 MiB × 16 in flight) a response body is a slice of h2's read buffer,
//! so while a callback's view (or a retained response) holds one, h2's next read needs a new buffer;
//! glibc gives freed blocks of that size back to the system (`munmap`, or trimming the top of the
//! heap), so every new buffer started on untouched pages: 81 to 149 page faults per request (two
//! VMs), where the raw tonic client, which drops each response before reading the next, took 3.4
//! (BENCHMARKS.md, findings 11 and 13). Telling glibc to keep such blocks (`GLIBC_TUNABLES`, `mallopt`) fixed it,
//! but those settings are the whole process's; this cache keeps only the library's own blocks.
//!
//! Mid-size blocks: every send allocates a few blocks that glibc's per-thread cache (up to 1032
//! bytes) does not take: the call's state (1736 bytes when measured), hyper's per-request tasks
//! (1432, while the channel used hyper's client) and the spawned send (a tokio task, aligned to 128
//! bytes, which `posix_memalign` serves from the general heap). Each took glibc's slow path
//! (`_int_malloc`, often `malloc_consolidate`, and `_int_free`): kept here, 1.1k to 1.9k fewer
//! instructions per request at 100 B and 8 % less CPU per request on library threads at 16 in
//! flight (BENCHMARKS.md, finding 16).
//!
//! What it changes: nothing for blocks up to 1 KiB aligned as `malloc` aligns (one size and
//! alignment check on the way to `malloc`) or for blocks aligned beyond 128 bytes. Blocks are
//! allocated at their size rounded up to a quarter of its power of two (1 MiB + 9 bytes: 1.25 MiB;
//! 1432 bytes: 1536), so that blocks of about the same size share a class; a mid-size block also at
//! an alignment of 128, so that a cached one serves any request of its class. Freed ones are kept
//! only from the first C ABI call on: a program that uses the library through its Rust API alone
//! (this workspace's test server and benchmark binary) keeps none, and its mid-size blocks are the
//! system's as asked. A mid-size block is kept only if `malloc_usable_size` says it holds its class
//! (one allocated before the first C ABI call may not), so mid-size blocks are cached on Linux and
//! Android only; elsewhere they are the system's as asked. The benchmark's floor, raw tonic, runs in a
//! binary that does not link the library at all (`bench/src/floor.rs`). Each of the two caches has
//! a lock that is only tried: a thread that finds it taken (or a child process after `fork`, which
//! may have copied it taken) uses the system directly.
//!
//! A Rust program that links the crate and sets its own `#[global_allocator]` builds it without the
//! default feature `buffer-cache`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};

/// Blocks from this size go through the cache (glibc's default `mmap` threshold).
const LARGE: usize = 128 * 1024;
/// Blocks above this size bypass the cache (their class could overflow a `Layout`).
const HUGE: usize = 1 << 40;
/// At most this many cached blocks...
const MAX_BLOCKS: usize = 32;
/// ... holding at most this many bytes.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// The alignment `malloc` gives (x86_64, aarch64): larger alignments bypass the cache of large blocks.
const MALLOC_ALIGN: usize = 16;
/// Blocks up to this size, aligned as `malloc` aligns, go straight to `malloc` (glibc keeps freed
/// blocks up to 1032 bytes in a per-thread cache of its own).
const SMALL: usize = 1024;
/// Mid-size blocks (above `SMALL`, or over-aligned, and under `LARGE`) are allocated at their class
/// with this alignment (a tokio task's on x86_64; blocks aligned beyond it go to the system), so
/// that a cached block serves any request of its class.
const MID_ALIGN: usize = 128;
/// The smallest class of a mid-size block (an over-aligned small one).
const MID_MIN: usize = 256;
/// The classes from `MID_MIN` to `LARGE`: four per doubling, `LARGE` itself included (a size just
/// under it rounds up to it).
const MID_CLASSES: usize = 4 * (LARGE.trailing_zeros() - MID_MIN.trailing_zeros()) as usize + 1;
/// At most this many cached mid-size blocks of one class...
const MID_PER_CLASS: usize = 256;
/// ... and this many bytes of them in all.
const MID_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The size a large block of `size` bytes is allocated with: rounded up to a quarter of its power
/// of two (4 classes per doubling; at most 25 % unused).
fn class(size: usize) -> usize {
    let top = usize::BITS - 1 - size.leading_zeros();
    let step = 1usize << (top - 2);
    size.div_ceil(step) * step
}

/// The class a block of `layout` is allocated with, if it goes through the cache: from `LARGE`
/// bytes (the caller checked), at most `HUGE`, aligned as `malloc` aligns.
fn cached_class(layout: &Layout) -> Option<usize> {
    (layout.size() <= HUGE && layout.align() <= MALLOC_ALIGN).then(|| class(layout.size()))
}

/// The class of a mid-size block of `size` bytes, and its index among the mid-size classes.
fn mid_class(size: usize) -> (usize, usize) {
    let class = class(size.max(MID_MIN));
    let top = usize::BITS - 1 - class.leading_zeros();
    let index = (top - MID_MIN.trailing_zeros()) as usize * 4 + (class >> (top - 2)) - 4;
    (class, index)
}

/// The bytes of the mid-size class at `index` (the inverse of [`mid_class`]).
fn mid_class_size(index: usize) -> usize {
    let top = index / 4 + MID_MIN.trailing_zeros() as usize;
    (index % 4 + 4) << (top - 2)
}

/// Whether mid-size blocks are cached: where `malloc_usable_size` tells what a block holds.
const MID_CACHE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether a block of `layout` is mid-size (neither small, straight to `malloc`, nor large) and so
/// goes through the mid-size cache.
fn is_mid(layout: &Layout) -> bool {
    MID_CACHE && layout.size() < LARGE && layout.align() <= MID_ALIGN && !is_small(layout)
}

fn is_small(layout: &Layout) -> bool {
    layout.size() <= SMALL && layout.align() <= MALLOC_ALIGN
}

/// The bytes `malloc` gave the block at `ptr` (0 where the system cannot tell; `MID_CACHE` is off
/// there).
///
/// # Safety
/// `ptr` is a live block from `System`.
unsafe fn usable_size(ptr: *mut u8) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: a live block of the system's malloc (System allocates with malloc or posix_memalign).
    return unsafe { libc::malloc_usable_size(ptr.cast()) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = ptr;
        0
    }
}

/// Freed mid-size blocks: a stack of addresses per class.
struct MidBlocks {
    stacks: [[usize; MID_PER_CLASS]; MID_CLASSES],
    lens: [usize; MID_CLASSES],
    bytes: usize,
}

impl MidBlocks {
    fn pop(&mut self, (class, index): (usize, usize)) -> Option<*mut u8> {
        let len = self.lens[index].checked_sub(1)?;
        self.lens[index] = len;
        self.bytes -= class;
        Some(self.stacks[index][len] as *mut u8)
    }

    /// A cached block of any class, if there is one.
    fn pop_any(&mut self) -> Option<*mut u8> {
        let index = self.lens.iter().position(|&len| len > 0)?;
        Some(self.pop((mid_class_size(index), index)).expect("a class with a block"))
    }

    fn push(&mut self, ptr: *mut u8, (class, index): (usize, usize)) -> bool {
        let len = self.lens[index];
        if len == MID_PER_CLASS || self.bytes + class > MID_MAX_BYTES {
            return false;
        }
        self.stacks[index][len] = ptr as usize;
        self.lens[index] = len + 1;
        self.bytes += class;
        true
    }
}

/// Freed large blocks: address and class.
struct Blocks {
    blocks: [(usize, usize); MAX_BLOCKS],
    len: usize,
    bytes: usize,
}

/// The allocator (see the module documentation).
pub struct BufferCache {
    enabled: AtomicBool,
    cache: Mutex<Blocks>,
    mid: Mutex<MidBlocks>,
}

impl BufferCache {
    pub const fn new() -> BufferCache {
        BufferCache {
            enabled: AtomicBool::new(false),
            cache: Mutex::new(Blocks {
                blocks: [(0, 0); MAX_BLOCKS],
                len: 0,
                bytes: 0,
            }),
            mid: Mutex::new(MidBlocks {
                stacks: [[0; MID_PER_CLASS]; MID_CLASSES],
                lens: [0; MID_CLASSES],
                bytes: 0,
            }),
        }
    }

    /// Starts keeping freed large blocks (the first C ABI call does).
    pub fn enable(&self) {
        if !self.enabled.load(Ordering::Relaxed) {
            self.enabled.store(true, Ordering::Relaxed);
        }
    }

    fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Runs `f` on the cache of large blocks if it is enabled and its lock is free.
    fn with<T>(&self, f: impl FnOnce(&mut Blocks) -> T) -> Option<T> {
        if !self.is_enabled() {
            return None;
        }
        try_with(&self.cache, f)
    }

    /// A cached block of class `class`, if there is one.
    fn take(&self, class: usize) -> Option<*mut u8> {
        self.with(|c| {
            let i = c.blocks[..c.len].iter().position(|&(_, k)| k == class)?;
            let (ptr, _) = c.blocks[i];
            c.len -= 1;
            c.blocks[i] = c.blocks[c.len];
            c.bytes -= class;
            Some(ptr as *mut u8)
        })
        .flatten()
    }

    /// Keeps a freed block of class `class`; false when the cache is full (or off or busy).
    fn keep(&self, ptr: *mut u8, class: usize) -> bool {
        self.with(|c| {
            if c.len == MAX_BLOCKS || c.bytes + class > MAX_BYTES {
                return false;
            }
            c.blocks[c.len] = (ptr as usize, class);
            c.len += 1;
            c.bytes += class;
            true
        })
        .unwrap_or(false)
    }

    /// A mid-size block (enabled): a cached one of its class, else a new one of its class.
    #[inline(never)]
    fn alloc_mid(&self, layout: Layout) -> *mut u8 {
        let class = mid_class(layout.size());
        match try_with(&self.mid, |m| m.pop(class)).flatten() {
            Some(ptr) => ptr,
            // SAFETY: a non-zero size and a valid alignment.
            None => unsafe { System.alloc(Layout::from_size_align_unchecked(class.0, MID_ALIGN)) },
        }
    }

    /// A mid-size block freed (enabled): into the cache if it holds a block of its class (at
    /// `MID_ALIGN`, at least the class's bytes), else back to the system.
    ///
    /// # Safety
    /// `ptr` is a block this allocator handed out for `layout`.
    #[inline(never)]
    unsafe fn dealloc_mid(&self, ptr: *mut u8, layout: Layout) {
        let class = mid_class(layout.size());
        // SAFETY: a live block from System (the caller's promise).
        let fits = ptr as usize % MID_ALIGN == 0 && unsafe { usable_size(ptr) } >= class.0;
        if !(fits && try_with(&self.mid, |m| m.push(ptr, class)) == Some(true)) {
            // SAFETY: allocated by System (`free` whatever its layout).
            unsafe { System.dealloc(ptr, layout) };
        }
    }

    /// `GlobalAlloc::realloc` of a mid-size block to a size under `LARGE` (enabled): in place when
    /// the block holds the new size, else a new block.
    ///
    /// # Safety
    /// As `GlobalAlloc::realloc`.
    #[inline(never)]
    unsafe fn realloc_mid(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: a live block from System (the caller's promise).
        if unsafe { usable_size(ptr) } >= new_size {
            return ptr;
        }
        // SAFETY: as `realloc_large`'s copy.
        unsafe { self.move_to(ptr, layout, new_size) }
    }

    /// A new block of `new_size` with `layout`'s alignment, holding the old one's bytes; the old one
    /// freed.
    ///
    /// # Safety
    /// As `GlobalAlloc::realloc`.
    unsafe fn move_to(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `alloc`; the new block does not overlap the old one, both are at least the
        // smaller of the two sizes, and the old one is freed as it was allocated.
        unsafe {
            let new = self.alloc(sized(new_size, &layout));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }

    /// Gives every cached block back to the system.
    fn release(&self) {
        // One block at a time out of the cache (no allocation while its lock is held), freed after.
        while let Some(Some(ptr)) = try_with(&self.mid, MidBlocks::pop_any) {
            // SAFETY: a block from System, now owned by nobody else (`free` whatever its layout).
            unsafe { System.dealloc(ptr, Layout::from_size_align_unchecked(MID_MIN, MID_ALIGN)) };
        }
        let taken: Vec<(usize, usize)> = {
            let Some(taken) = self.with(|c| {
                let taken = c.blocks[..c.len].to_vec();
                c.len = 0;
                c.bytes = 0;
                taken
            }) else {
                return;
            };
            taken
        };
        for (ptr, class) in taken {
            // SAFETY: a block of at least `class` bytes from System, now owned by nobody else.
            unsafe { System.dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(class, 1)) };
        }
    }

    /// The number of blocks cached now.
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len)
    }

    /// The number of mid-size blocks cached now.
    #[cfg(test)]
    fn cached_mid(&self) -> usize {
        self.mid.lock().map_or(0, |m| m.lens.iter().sum())
    }

    /// A large block: a cached one of its class, else a new one from the system.
    #[inline(never)]
    fn alloc_large(&self, layout: Layout) -> *mut u8 {
        let Some(class) = cached_class(&layout) else {
            // SAFETY: a non-zero size and a valid alignment.
            return unsafe { System.alloc(layout) };
        };
        match self.take(class) {
            Some(ptr) => ptr,
            // SAFETY: a non-zero size and a valid alignment.
            None => unsafe { System.alloc(sized(class, &layout)) },
        }
    }

    /// A large block freed: into the cache, else back to the system.
    ///
    /// # Safety
    /// `ptr` is a block this allocator handed out for `layout` (as `GlobalAlloc::dealloc`).
    #[inline(never)]
    unsafe fn dealloc_large(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = cached_class(&layout) else {
            // SAFETY: allocated by System with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        };
        if !self.keep(ptr, class) {
            // SAFETY: allocated by System (with size `class`, which `free` does not need).
            unsafe { System.dealloc(ptr, sized(class, &layout)) };
        }
    }

    /// `GlobalAlloc::realloc` where the old or the new size is large.
    ///
    /// # Safety
    /// As `GlobalAlloc::realloc`.
    #[inline(never)]
    unsafe fn realloc_large(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = sized(new_size, &layout);
        let small = |l: &Layout| l.size() < LARGE;
        let old_class = (!small(&layout)).then(|| cached_class(&layout)).flatten();
        let new_class = (!small(&new_layout)).then(|| cached_class(&new_layout)).flatten();
        match (old_class, new_class) {
            // The block is of the new size's class already.
            (Some(old), Some(new)) if old == new => return ptr,
            // Both outside the cache (over-aligned or huge): System's own block and realloc.
            // SAFETY: allocated by System with `layout`.
            (None, None) if !small(&layout) && !small(&new_layout) => {
                return unsafe { System.realloc(ptr, layout, new_size) }
            }
            _ => {}
        }
        // SAFETY: the caller's promise.
        unsafe { self.move_to(ptr, layout, new_size) }
    }
}

/// Runs `f` on a cache if its lock is free.
fn try_with<B, T>(cache: &Mutex<B>, f: impl FnOnce(&mut B) -> T) -> Option<T> {
    match cache.try_lock() {
        Ok(mut blocks) => Some(f(&mut blocks)),
        Err(TryLockError::Poisoned(p)) => Some(f(&mut p.into_inner())),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A layout of `size` bytes with `layout`'s alignment.
fn sized(size: usize, layout: &Layout) -> Layout {
    // SAFETY: the alignment is a valid one (taken from a Layout) and `size` rounded up to it does
    // not overflow: `size` is at most a quarter more than a valid layout's size.
    unsafe { Layout::from_size_align_unchecked(size, layout.align()) }
}

// SAFETY: every block comes from `System` with a layout of at least the requested size and the
// requested alignment (a large block: its class, which is at least its size; a mid-size one: its
// class at `MID_ALIGN`, which is at least the alignment a mid-size request may ask); a cached block
// is owned by the cache alone until it is handed out again, and is handed out for a request of the
// same class: a large one was allocated at that class, a mid-size one was checked to hold that
// class's bytes at `MID_ALIGN` when it was kept. `System`'s deallocation on Unix is `free` whatever
// the layout, so freeing a block with another size or alignment than it was allocated with (its
// class, the size it was reallocated to in place) is sound.
unsafe impl GlobalAlloc for BufferCache {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_small(&layout) {
            // SAFETY: as the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        if layout.size() >= LARGE {
            return self.alloc_large(layout);
        }
        if is_mid(&layout) && self.is_enabled() {
            return self.alloc_mid(layout);
        }
        // SAFETY: as the caller's layout.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // `calloc` gets fresh zero pages for free; a cached block would need clearing.
        if is_mid(&layout) && self.is_enabled() {
            let ptr = self.alloc_mid(layout);
            if !ptr.is_null() {
                // SAFETY: a block of at least `layout.size()` bytes.
                unsafe { ptr.write_bytes(0, layout.size()) };
            }
            return ptr;
        }
        let layout = if layout.size() < LARGE {
            layout
        } else {
            cached_class(&layout).map_or(layout, |class| sized(class, &layout))
        };
        // SAFETY: as the caller's layout, or a larger size with its alignment.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_small(&layout) {
            // SAFETY: allocated by System with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if layout.size() >= LARGE {
            // SAFETY: the caller's promise.
            unsafe { self.dealloc_large(ptr, layout) };
            return;
        }
        if is_mid(&layout) && self.is_enabled() {
            // SAFETY: the caller's promise.
            return unsafe { self.dealloc_mid(ptr, layout) };
        }
        // SAFETY: allocated by System (`free` whatever its layout).
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() >= LARGE || new_size >= LARGE {
            // SAFETY: the caller's promise.
            return unsafe { self.realloc_large(ptr, layout, new_size) };
        }
        let new_layout = sized(new_size, &layout);
        if self.is_enabled() && (is_mid(&layout) || is_mid(&new_layout)) {
            // SAFETY: the caller's promise.
            return unsafe { self.realloc_mid(ptr, layout, new_size) };
        }
        // SAFETY: System's own block (small, or mid-size from before the cache was enabled, or
        // over-aligned beyond the cache) and System's realloc, which keeps the alignment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(feature = "buffer-cache")]
#[global_allocator]
static ALLOCATOR: BufferCache = BufferCache::new();

/// Starts the cache of large blocks (with the default feature `buffer-cache`); the C ABI's calls do.
pub(crate) fn enable() {
    #[cfg(feature = "buffer-cache")]
    ALLOCATOR.enable();
}

/// Gives the cached blocks back to the system (`jina_net_runtime_shutdown`); the cache keeps
/// working.
pub(crate) fn release() {
    #[cfg(feature = "buffer-cache")]
    ALLOCATOR.release();
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    /// The library's global allocator is this cache, and a C ABI call starts it: a large `Vec`
    /// dropped afterwards lands in it.
    #[cfg(feature = "buffer-cache")]
    #[test]
    fn a_c_abi_call_starts_the_library_allocator() {
        let _ = super::super::result::boundary("test", || Ok(()));
        assert!(ALLOCATOR.enabled.load(Ordering::Relaxed));
        // A class no other test allocates (7.75 MiB), so the cache's other users (tests running
        // at the same time) do not take the block; tried again when the lock was busy.
        let size = 7 * MIB + 3 * MIB / 4 - 5;
        let kept = (0..100).any(|_| {
            let v: Vec<u8> = Vec::with_capacity(size);
            let ptr = v.as_ptr() as usize;
            drop(v);
            let cache = ALLOCATOR.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.blocks[..cache.len].contains(&(ptr, class(size)))
        });
        assert!(kept, "a freed large block was not kept");
    }

    #[test]
    fn classes_are_quarters_of_a_power_of_two() {
        assert_eq!(class(LARGE), LARGE);
        assert_eq!(class(MIB), MIB);
        assert_eq!(class(MIB + 9), MIB + MIB / 4);
        assert_eq!(class(MIB + MIB / 4), MIB + MIB / 4);
        assert_eq!(class(MIB + MIB / 4 + 1), MIB + MIB / 2);
        assert_eq!(class(2 * MIB - 1), 2 * MIB);
        for size in [LARGE, LARGE + 1, 300_000, MIB + 9, 5 * MIB + 3, 1 << 40] {
            assert!(class(size) >= size && class(size) - size <= size / 4, "{size}");
        }
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn a_freed_large_block_is_reused_once_enabled() {
        let cache = BufferCache::new();
        // SAFETY: every block is allocated and freed with the layouts the allocator contract asks.
        unsafe {
            // Off: freed blocks go back to the system.
            let a = cache.alloc(layout(MIB + 9));
            assert!(!a.is_null());
            cache.dealloc(a, layout(MIB + 9));
            assert_eq!(cache.cached(), 0);

            cache.enable();
            let a = cache.alloc(layout(MIB + 9));
            a.write_bytes(0xab, MIB + MIB / 4); // the whole class is the block's
            cache.dealloc(a, layout(MIB + 9));
            assert_eq!(cache.cached(), 1);
            // Another class: a new block (the cached one stays). Same class: the cached one.
            let c = cache.alloc(layout(3 * MIB));
            assert_ne!(c, a);
            assert_eq!(cache.cached(), 1);
            let b = cache.alloc(layout(MIB + 100));
            assert_eq!(b, a);
            assert_eq!(cache.cached(), 0);
            cache.dealloc(b, layout(MIB + 100));
            cache.dealloc(c, layout(3 * MIB));
            assert_eq!(cache.cached(), 2);
            // Small and over-aligned blocks never enter it.
            let s = cache.alloc(layout(1000));
            cache.dealloc(s, layout(1000));
            let big_align = Layout::from_size_align(MIB, 4096).unwrap();
            let o = cache.alloc(big_align);
            assert_eq!(o as usize % 4096, 0);
            cache.dealloc(o, big_align);
            assert_eq!(cache.cached(), 2);
            // A zeroed block is zeroed, though a dirty one of its class is cached.
            let z = cache.alloc_zeroed(layout(MIB + 9));
            assert!(std::slice::from_raw_parts(z, MIB + 9).iter().all(|&b| b == 0));
            cache.dealloc(z, layout(MIB + 9));
        }
        cache.release();
        assert_eq!(cache.cached(), 0);
    }

    /// Allocates `n` blocks of `size` bytes, then frees them all.
    fn allocate_then_free(cache: &BufferCache, n: usize, size: usize) {
        // SAFETY: each block freed once, with the layout it was allocated with.
        unsafe {
            let blocks: Vec<*mut u8> = (0..n).map(|_| cache.alloc(layout(size))).collect();
            for b in blocks {
                cache.dealloc(b, layout(size));
            }
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = BufferCache::new();
        cache.enable();
        // SAFETY: as above.
        unsafe {
            allocate_then_free(&cache, MAX_BLOCKS + 4, LARGE);
            assert_eq!(cache.cached(), MAX_BLOCKS);
            // Full by count: none of these is kept.
            allocate_then_free(&cache, 4, 40 * MIB);
            assert_eq!(cache.cached(), MAX_BLOCKS);
            // Drained, then the byte limit: 64 MiB hold one block of 40 MiB.
            for _ in 0..MAX_BLOCKS {
                let b = cache.alloc(layout(LARGE));
                System.dealloc(b, layout(LARGE));
            }
            assert_eq!(cache.cached(), 0);
            allocate_then_free(&cache, 4, 40 * MIB);
            assert_eq!(cache.cached(), 1, "64 MiB hold one block of 40 MiB");
        }
        cache.release();
        assert_eq!(cache.cached(), 0);
    }

    /// Reallocates a block of `first` bytes (its first 500 bytes numbered) through `sizes`: the
    /// bytes are kept each time, and the block stays where it is when resized to `in_place`.
    fn realloc_through(first: usize, sizes: &[usize], in_place: usize) {
        let cache = BufferCache::new();
        cache.enable();
        // SAFETY: each block allocated, reallocated and freed with its current layout.
        unsafe {
            let mut p = cache.alloc(layout(first));
            let mut size = first;
            for i in 0..500 {
                p.add(i).write(i as u8);
            }
            for &new_size in sizes {
                let q = cache.realloc(p, layout(size), new_size);
                assert!(!q.is_null());
                if new_size == in_place {
                    assert_eq!(q, p, "{size} → {new_size}: in place");
                }
                for i in 0..500 {
                    assert_eq!(q.add(i).read(), i as u8, "byte {i} after realloc to {new_size}");
                }
                p = q;
                size = new_size;
            }
            cache.dealloc(p, layout(size));
        }
        cache.release();
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes() {
        // small → large → same class (in place) → larger class → small
        realloc_through(1000, &[LARGE + 5, LARGE + 6, 3 * MIB, 500], LARGE + 6);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn mid_size_classes_cover_up_to_large() {
        let mut last = (0, 0);
        for size in 1..LARGE {
            let (class, index) = mid_class(size);
            assert!(index < MID_CLASSES, "{size}");
            assert!(class >= size && class >= MID_MIN, "{size}");
            assert!(size <= MID_MIN || class - size <= size / 4, "{size}");
            // One index per class, in order.
            assert!(
                index == last.1 && class == last.0 || index == last.1 + 1 || last == (0, 0),
                "{size}"
            );
            last = (class, index);
        }
        assert_eq!(last, (LARGE, MID_CLASSES - 1));
        assert_eq!(mid_class(1432).0, 1536);
        assert!(is_small(&layout(SMALL)) && !is_mid(&layout(SMALL)));
        assert!(is_mid(&layout(SMALL + 1)) && is_mid(&Layout::from_size_align(64, 128).unwrap()));
        assert!(!is_mid(&layout(LARGE)) && !is_mid(&Layout::from_size_align(2048, 4096).unwrap()));
    }

    fn aligned(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_freed_mid_size_block_is_reused_for_its_class_once_enabled() {
        let cache = BufferCache::new();
        // SAFETY: every block is allocated and freed with the layouts the allocator contract asks.
        unsafe {
            // Off: the system's blocks, freed to the system; one of them stays out of the cache
            // once it is on (malloc gave it fewer bytes than its class).
            let a = cache.alloc(layout(1100));
            let b = cache.alloc(layout(1100));
            cache.dealloc(a, layout(1100));
            cache.enable();
            assert!(usable_size(b) < mid_class(1100).0 || b as usize % MID_ALIGN != 0);
            cache.dealloc(b, layout(1100));
            assert_eq!(cache.cached_mid(), 0);

            // On: a block of its class at MID_ALIGN, kept when freed.
            let a = cache.alloc(layout(1432));
            assert_eq!(a as usize % MID_ALIGN, 0);
            a.write_bytes(0xab, 1536); // the whole class is the block's
            cache.dealloc(a, layout(1432));
            assert_eq!(cache.cached_mid(), 1);
            // Another class: a new block; the same class (another size, an alignment up to
            // MID_ALIGN): the cached one.
            let c = cache.alloc(layout(1200));
            assert_ne!(c, a);
            let d = cache.alloc(aligned(1500, 128));
            assert_eq!(d, a);
            assert_eq!(cache.cached_mid(), 0);
            cache.dealloc(c, layout(1200));
            cache.dealloc(d, aligned(1500, 128));
            assert_eq!(cache.cached_mid(), 2);
            // An over-aligned small block (a tokio task) has a class too; a block aligned beyond
            // MID_ALIGN and a small one do not enter the cache.
            let t = cache.alloc(aligned(200, 128));
            assert_eq!(t as usize % 128, 0);
            cache.dealloc(t, aligned(200, 128));
            assert_eq!(cache.cached_mid(), 3);
            let o = cache.alloc(aligned(2048, 4096));
            assert_eq!(o as usize % 4096, 0);
            cache.dealloc(o, aligned(2048, 4096));
            let s = cache.alloc(layout(SMALL));
            cache.dealloc(s, layout(SMALL));
            assert_eq!(cache.cached_mid(), 3);
            // A zeroed block is zeroed, though a dirty one of its class is cached.
            let z = cache.alloc_zeroed(layout(1400));
            assert_eq!(z, a);
            assert!(std::slice::from_raw_parts(z, 1400).iter().all(|&b| b == 0));
            cache.dealloc(z, layout(1400));
        }
        cache.release();
        assert_eq!(cache.cached_mid(), 0);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_mid_size_cache_is_bounded() {
        let cache = BufferCache::new();
        cache.enable();
        allocate_then_free(&cache, MID_PER_CLASS + 4, 2000);
        assert_eq!(cache.cached_mid(), MID_PER_CLASS, "per class");
        // 4 MiB hold 256 blocks of 2 KiB (512 KiB) and then 32 of 100,000 bytes' class (112 KiB:
        // 3.5 MiB)...
        let held = MID_PER_CLASS * mid_class(2000).0;
        let fit = (MID_MAX_BYTES - held) / mid_class(100_000).0;
        assert_eq!(fit, 32);
        allocate_then_free(&cache, MID_PER_CLASS, 100_000);
        assert_eq!(cache.cached_mid(), MID_PER_CLASS + fit, "in all");
        // ... and then none of 120,000 bytes' class (128 KiB): nothing was left.
        allocate_then_free(&cache, MID_PER_CLASS, 120_000);
        assert_eq!(cache.cached_mid(), MID_PER_CLASS + fit, "in all");
        cache.release();
        assert_eq!(cache.cached_mid(), 0);
    }

    #[test]
    fn a_mid_size_class_is_found_back_from_its_index() {
        for index in 0..MID_CLASSES {
            assert_eq!(mid_class_size(index), mid_class_of_index(index), "index {index}");
        }
        assert_eq!(mid_class_size(MID_CLASSES - 1), LARGE);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn realloc_keeps_the_bytes_through_mid_sizes() {
        // mid → same class (in place: the block holds 1280 bytes) → larger class → small → mid →
        // large → mid
        realloc_through(1100, &[1200, 5000, 500, 3000, LARGE + 1, 2000], 1200);
    }

    /// Threads allocating, filling, resizing, checking and freeing blocks of every kind at once (a
    /// block may be freed on another thread than the one that allocated it): no block is handed out
    /// twice (each one's bytes stay its own) and both caches stay within their bounds.
    #[test]
    fn threads_share_the_caches() {
        let cache = BufferCache::new();
        cache.enable();
        let sizes = [100, 1100, 1432, 1736, 5000, 70_000, LARGE + 7, 300_000];
        let (tx, rx) = std::sync::mpsc::channel::<(usize, usize, u8)>();
        let rx = std::sync::Mutex::new(rx);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let (cache, tx, rx) = (&cache, tx.clone(), &rx);
                s.spawn(move || {
                    for i in 0..2000usize {
                        let size = sizes[(i * 7 + t as usize) % sizes.len()];
                        let mark = t.wrapping_mul(31).wrapping_add(i as u8);
                        // SAFETY: each block is written within its size, resized and freed once
                        // with its current layout.
                        unsafe {
                            let align = if i % 3 == 0 { 128 } else { 8 };
                            let l = Layout::from_size_align(size, align).unwrap();
                            let p = cache.alloc(l);
                            assert_eq!(p as usize % align, 0);
                            p.write_bytes(mark, size);
                            let p = if align == 8 && i % 5 == 0 {
                                let q = cache.realloc(p, l, size / 2 + 1);
                                q.add(size / 2).write(mark);
                                tx.send((q as usize, size / 2 + 1, mark)).unwrap();
                                continue;
                            } else {
                                p
                            };
                            if i % 2 == 0 {
                                // Freed here.
                                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == mark));
                                cache.dealloc(p, l);
                            } else if align == 8 {
                                // Freed by whichever thread takes it.
                                tx.send((p as usize, size, mark)).unwrap();
                            } else {
                                cache.dealloc(p, l);
                            }
                        }
                        let taken = rx.lock().unwrap().try_recv();
                        if let Ok((p, size, mark)) = taken {
                            // SAFETY: a block sent by its owner, of `size` bytes at alignment 8.
                            unsafe {
                                let p = p as *mut u8;
                                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == mark));
                                cache.dealloc(p, layout(size));
                            }
                        }
                    }
                });
            }
        });
        drop(tx);
        for (p, size, mark) in rx.into_inner().unwrap() {
            // SAFETY: as above.
            unsafe {
                let p = p as *mut u8;
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == mark));
                cache.dealloc(p, layout(size));
            }
        }
        assert!(cache.cached() <= MAX_BLOCKS);
        let mid = cache.mid.lock().unwrap();
        assert!(mid.bytes <= MID_MAX_BYTES && mid.lens.iter().all(|&n| n <= MID_PER_CLASS));
        assert_eq!(
            mid.bytes,
            mid.lens
                .iter()
                .enumerate()
                .map(|(i, &n)| n * mid_class_of_index(i))
                .sum::<usize>()
        );
        drop(mid);
        cache.release();
        assert_eq!((cache.cached(), cache.cached_mid()), (0, 0));
    }

    /// The class at mid-size index `index`.
    fn mid_class_of_index(index: usize) -> usize {
        (1..LARGE).map(mid_class).find(|&(_, i)| i == index).unwrap().0
    }
}

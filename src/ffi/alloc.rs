//! The allocator of the library: the system's `malloc`, except that large blocks (128 KiB and up)
//! freed while the C ABI is in use are kept for reuse, up to 32 blocks and 64 MiB in all, instead
//! of going back to the system.
//!
//! Why: with large messages (1 MiB × 16 in flight) a response body is a slice of h2's read buffer,
//! so while a callback's view (or a retained response) holds one, h2's next read needs a new buffer;
//! glibc gives freed blocks of that size back to the system (`munmap`, or trimming the top of the
//! heap), so every new buffer started on untouched pages: 81 to 149 page faults per request (two
//! VMs), where the raw tonic client, which drops each response before reading the next, took 3.4
//! (BENCHMARKS.md, findings 11 and 13). Telling glibc to keep such blocks (`GLIBC_TUNABLES`, `mallopt`) fixed it,
//! but those settings are the whole process's; this cache keeps only the library's own blocks.
//!
//! What it changes: nothing for blocks under 128 KiB (one size check on the way to `malloc`) or for
//! over-aligned blocks. A large block is allocated at its size rounded up to a quarter of its power
//! of two (1 MiB + 9 bytes: 1.25 MiB), so that blocks of about the same size share a class. Freed
//! ones are kept only from the first C ABI call on: a program that uses the library through its Rust
//! API alone (this workspace's test server and benchmark binary) keeps none. The benchmark's floor,
//! raw tonic, runs in a binary that does not link the library at all (`bench/src/floor.rs`). The cache's
//! lock is only tried: a thread that finds it taken (or a child process after `fork`, which may
//! have copied it taken) uses the system directly.
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
/// The alignment `malloc` gives (x86_64, aarch64): larger alignments bypass the cache.
const MALLOC_ALIGN: usize = 16;

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
        }
    }

    /// Starts keeping freed large blocks (the first C ABI call does).
    pub fn enable(&self) {
        if !self.enabled.load(Ordering::Relaxed) {
            self.enabled.store(true, Ordering::Relaxed);
        }
    }

    /// Runs `f` on the cache if it is enabled and its lock is free.
    fn with<T>(&self, f: impl FnOnce(&mut Blocks) -> T) -> Option<T> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        match self.cache.try_lock() {
            Ok(mut blocks) => Some(f(&mut blocks)),
            Err(TryLockError::Poisoned(p)) => Some(f(&mut p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
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

    /// Gives every cached block back to the system.
    fn release(&self) {
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
        // SAFETY: as `alloc`; the new block does not overlap the old one, both are at least the
        // smaller of the two sizes, and the old one is freed as it was allocated.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// A layout of `size` bytes with `layout`'s alignment.
fn sized(size: usize, layout: &Layout) -> Layout {
    // SAFETY: the alignment is a valid one (taken from a Layout) and `size` rounded up to it does
    // not overflow: `size` is at most a quarter more than a valid layout's size.
    unsafe { Layout::from_size_align_unchecked(size, layout.align()) }
}

// SAFETY: every block comes from `System` with a layout of at least the requested size and the
// requested alignment (a large block: its class, which is at least its size); a cached block is
// owned by the cache alone until it is handed out again, and is handed out for a request of the same
// class. `System`'s deallocation does not depend on the size for alignments up to `MALLOC_ALIGN`
// (it is `free`), so freeing a block with its class as the size is sound.
unsafe impl GlobalAlloc for BufferCache {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < LARGE {
            // SAFETY: as the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        self.alloc_large(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // `calloc` gets fresh zero pages for free; a cached block would need clearing.
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
        if layout.size() >= LARGE {
            // SAFETY: the caller's promise.
            unsafe { self.dealloc_large(ptr, layout) };
            return;
        }
        // SAFETY: allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < LARGE && new_size < LARGE {
            // SAFETY: both small: System's own realloc of its own block.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller's promise.
        unsafe { self.realloc_large(ptr, layout, new_size) }
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

    #[test]
    fn realloc_keeps_the_bytes_across_classes() {
        let cache = BufferCache::new();
        cache.enable();
        // SAFETY: as above; each realloc passes the block's current layout.
        unsafe {
            let mut p = cache.alloc(layout(1000));
            let mut size = 1000;
            for i in 0..1000 {
                p.add(i).write(i as u8);
            }
            // small → large → same class (in place) → larger class → small
            for new_size in [LARGE + 5, LARGE + 6, 3 * MIB, 500] {
                let q = cache.realloc(p, layout(size), new_size);
                assert!(!q.is_null());
                if new_size == LARGE + 6 {
                    assert_eq!(q, p, "same class: in place");
                }
                for i in 0..500 {
                    assert_eq!(q.add(i).read(), i as u8, "byte {i} after realloc to {new_size}");
                }
                p = q;
                size = new_size;
            }
            cache.dealloc(p, layout(size));
        }
    }
}

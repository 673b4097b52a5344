//! Large byte buffers (a file's bytes, its canonical renderings) reused by the thread that is
//! done with them. A backfill's preparing thread handles one file after another; a fresh
//! multi-megabyte buffer for each cost a page fault per 4 KiB touched, about a twentieth of the
//! backfill's CPU (BENCHMARKS.md). A thread that never gives a buffer back (a single import)
//! simply allocates, as before.

use std::cell::RefCell;

/// Buffers kept per thread at most: a file's bytes and its rendering (a rendering in the
/// original's style is made after the plain one was hashed and given back).
const KEPT: usize = 2;

/// Larger buffers are freed, not kept: a thread keeps at most `KEPT` times this.
const MAX_KEPT_BYTES: usize = 16 << 20;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes: a kept one when one is large
/// enough, else a new one.
pub fn take(capacity: usize) -> Vec<u8> {
    let kept = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let at = spare.iter().position(|b| b.capacity() >= capacity)?;
        Some(spare.swap_remove(at))
    });
    kept.unwrap_or_else(|| Vec::with_capacity(capacity))
}

/// Keeps `buffer` for this thread's next [`take`], emptied, unless enough are kept already or
/// it is too large to keep.
pub fn give(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > MAX_KEPT_BYTES {
        return;
    }
    buffer.clear();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < KEPT {
            spare.push(buffer);
        } else if let Some(smallest) = spare.iter_mut().min_by_key(|b| b.capacity()) {
            if smallest.capacity() < buffer.capacity() {
                *smallest = buffer;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_large_enough() {
        std::thread::spawn(|| {
            let mut b = take(1000);
            b.extend_from_slice(b"secret bytes of the last file");
            let at = b.as_ptr();
            give(b);
            let again = take(500);
            assert!(again.is_empty());
            assert_eq!(again.as_ptr(), at, "the kept buffer is reused");
            assert!(take(1 << 20).capacity() >= 1 << 20, "too small: a new one");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_keeps_few_buffers_and_none_too_large() {
        std::thread::spawn(|| {
            for size in [10, 20, 30, MAX_KEPT_BYTES + 1] {
                give(Vec::with_capacity(size));
            }
            SPARE.with(|s| {
                let mut caps: Vec<usize> = s.borrow().iter().map(|b| b.capacity()).collect();
                caps.sort_unstable();
                assert_eq!(caps, [20, 30]);
            });
        })
        .join()
        .unwrap();
    }
}

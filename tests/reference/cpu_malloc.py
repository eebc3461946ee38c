"""Gives PyTorch on the CPU the memory allocator behaviour a tuned installation has.

PyTorch's CPU tensors come from glibc's malloc. glibc serves every block above its mmap threshold
(at most 32 MB) with a fresh mmap and returns it with munmap, and trims the top of its heap back to
the system; MobileNet-CIFAR's activations at batch 128 are up to 33.5 MB, so each training step
page-faults its activations in again. On a 2-core Intel Xeon that cost PyTorch 1.13 a fifth of its
training speed (channels_last: 316 img/s with 11 of 26 seconds in the kernel, 427 img/s without).
PyTorch's performance guide recommends jemalloc or tcmalloc for CPU work, which keep such blocks;
turning glibc's mmap use and trimming off gives the same effect without installing anything, so that
the comparisons here are with PyTorch at its best. Our trainer is unaffected either way: it plans its
activations once, in one arena.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_MAX = -4


def keep_freed_memory():
    """Tells glibc to serve large blocks from its heap and never to trim it. Returns a few words for
    the log: what was done, or why not (another C library, no mallopt)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError) as e:
        return f"malloc: default (no glibc mallopt: {e})"
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, 2**31 - 1) != 1:
        return "malloc: default (mallopt refused)"
    return "malloc: glibc without mmap or trimming (as jemalloc/tcmalloc would keep freed memory)"

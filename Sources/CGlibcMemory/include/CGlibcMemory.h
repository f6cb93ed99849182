#ifndef CGLIBC_MEMORY_H
#define CGLIBC_MEMORY_H

#include <malloc.h> // malloc_trim: free heap pages back to the kernel
#include <stddef.h>
#include <stdint.h>

/// Writes the [start, end) address ranges of the loaded objects' segments, widened to whole
/// pages of `page_size` bytes (a power of two), into `starts` and `ends`, at most `capacity`
/// of them, and returns how many there are in all (more than `capacity` when the arrays were
/// too small). `writable` 0: the segments mapped without write permission (code, read-only
/// data); 1: those mapped with it. From dl_iterate_phdr, which Swift's Glibc module does not
/// declare (it needs _GNU_SOURCE).
size_t cglibc_loaded_segments(int writable, uintptr_t page_size, uintptr_t *starts, uintptr_t *ends, size_t capacity);

#endif

#define _GNU_SOURCE
#include <link.h>

#include "CGlibcMemory.h"

struct collected {
    uintptr_t *starts;
    uintptr_t *ends;
    size_t capacity;
    size_t count;
    uintptr_t page_mask;
    int writable;
};

static int collect(struct dl_phdr_info *info, size_t size, void *context) {
    (void)size;
    struct collected *out = context;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        int writable = (header->p_flags & PF_W) != 0;
        if (header->p_type != PT_LOAD || writable != out->writable || header->p_memsz == 0) continue;
        // The loader mapped the segment at base + p_vaddr, in whole pages of its own.
        uintptr_t start = (uintptr_t)info->dlpi_addr + (uintptr_t)header->p_vaddr;
        uintptr_t end = start + (uintptr_t)header->p_memsz;
        if (end <= start) continue;
        uintptr_t low = start & ~out->page_mask;
        uintptr_t high = (end + out->page_mask) & ~out->page_mask;
        if (high <= low) continue;
        if (out->count < out->capacity) {
            out->starts[out->count] = low;
            out->ends[out->count] = high;
        }
        out->count++;
    }
    return 0;
}

size_t cglibc_loaded_segments(int writable, uintptr_t page_size, uintptr_t *starts, uintptr_t *ends, size_t capacity) {
    struct collected out = {starts, ends, capacity, 0, page_size - 1, writable != 0};
    dl_iterate_phdr(collect, &out);
    return out.count;
}

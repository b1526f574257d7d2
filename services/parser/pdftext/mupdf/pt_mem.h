// The allocator behind each MuPDF context of the shim (pt_mem). Two
// builds: plain malloc (pt_malloc.c, the default) and, with -tags
// mupdfpool, a pool of small blocks (pt_pool.c). Neither includes MuPDF:
// the pool's self-test (testdata/pool_check.c) and the sanitizer build
// (scripts/sanitize.sh) compile them with gcc alone.

#ifndef PDFTEXT_PT_MEM_H
#define PDFTEXT_PT_MEM_H

#include <stddef.h>

typedef struct pt_mem pt_mem;

// pt_mem_new makes an allocator, or returns NULL when out of memory.
pt_mem *pt_mem_new(void);
void pt_mem_drop(pt_mem *m);

// The three callbacks of MuPDF's fz_alloc_context; user is the pt_mem.
// They return NULL when the system has no memory or the limit is reached
// (see pt_mem_set_limit), and count that in pt_mem_failures.
void *pt_mem_malloc(void *user, size_t n);
void *pt_mem_realloc(void *user, void *old, size_t n);
void pt_mem_free(void *user, void *p);

// pt_mem_live is the size of the blocks handed out and not freed.
size_t pt_mem_live(const pt_mem *m);

// pt_mem_pooled is the size of the pool's spans in use or kept (0 with
// plain malloc).
size_t pt_mem_pooled(const pt_mem *m);

// pt_mem_failures counts the allocations refused so far.
size_t pt_mem_failures(const pt_mem *m);

// pt_mem_set_limit makes allocations that would take the live bytes past
// limit fail (0: no limit). Tests use it to run a page out of memory.
void pt_mem_set_limit(pt_mem *m, size_t limit);

// pt_mem_release is called after MuPDF freed what it could (pt_trim): the
// pool sorts its emptied spans and, with give_back, returns their pages to
// the system; plain malloc has nothing to do (malloc_trim is the shim's).
void pt_mem_release(pt_mem *m, int give_back);

// pt_mem_kind names the allocator: "malloc" or "pool".
const char *pt_mem_kind(void);

#endif

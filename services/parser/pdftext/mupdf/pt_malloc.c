//go:build cgo && !nomupdf && !mupdfpool

// The default allocator of the shim's MuPDF contexts: the C library's
// malloc, with the bytes held counted for the trim budget. The size of a
// block is the C library's (malloc_usable_size), so blocks carry no header
// of ours and a sanitizer sees MuPDF's blocks exactly as asked for.

#include "pt_mem.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__APPLE__)
#include <malloc/malloc.h>
#define pt_usable(p) malloc_size(p)
#elif defined(_WIN32)
#include <malloc.h>
#define pt_usable(p) _msize(p)
#else
#include <malloc.h>
#define pt_usable(p) malloc_usable_size(p)
#endif

struct pt_mem {
	size_t live;     // usable bytes of the blocks MuPDF holds
	size_t limit;    // 0 or the most live may reach
	size_t failures; // allocations refused
};

pt_mem *pt_mem_new(void) { return calloc(1, sizeof(pt_mem)); }

void pt_mem_drop(pt_mem *m) { free(m); }

// pt_over reports whether n more bytes would pass m's limit.
static int pt_over(const pt_mem *m, size_t n) { return m->limit != 0 && (n > m->limit || m->live > m->limit - n); }

void *pt_mem_malloc(void *user, size_t n) {
	pt_mem *m = user;
	void *p = pt_over(m, n) ? NULL : malloc(n);
	if (p == NULL) {
		m->failures++;
		return NULL;
	}
	m->live += pt_usable(p);
	return p;
}

void pt_mem_free(void *user, void *p) {
	pt_mem *m = user;
	if (p == NULL) {
		return;
	}
	m->live -= pt_usable(p);
	free(p);
}

void *pt_mem_realloc(void *user, void *old, size_t n) {
	pt_mem *m = user;
	if (old == NULL) {
		return pt_mem_malloc(user, n);
	}
	if (n == 0) {
		pt_mem_free(user, old);
		return NULL;
	}
	size_t have = pt_usable(old);
	if (n > have && pt_over(m, n - have)) {
		m->failures++;
		return NULL;
	}
	void *p = realloc(old, n);
	if (p == NULL) {
		m->failures++;
		return NULL; // old is still MuPDF's, and counted
	}
	m->live = m->live - have + pt_usable(p);
	return p;
}

size_t pt_mem_live(const pt_mem *m) { return m->live; }
size_t pt_mem_pooled(const pt_mem *m) { (void)m; return 0; }
size_t pt_mem_failures(const pt_mem *m) { return m->failures; }
void pt_mem_set_limit(pt_mem *m, size_t limit) { m->limit = limit; }
void pt_mem_release(pt_mem *m, int give_back) { (void)m, (void)give_back; }
const char *pt_mem_kind(void) { return "malloc"; }

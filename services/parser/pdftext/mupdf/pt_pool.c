//go:build cgo && !nomupdf && mupdfpool

// The pool allocator of the shim's MuPDF contexts, built with -tags
// mupdfpool; plain malloc (pt_malloc.c) is the default. It is kept for
// measurements; docs/PERFORMANCE.md has what it bought and cost.
//
// Each context allocates through its own pool (pt_mem). MuPDF makes and
// frees millions of small objects per document (parsed PDF objects,
// structured-text characters, lexer buffers); through glibc's malloc each
// takes arena locks shared with the other workers' threads, and the pages
// that pdf_clear_xref frees and malloc_trim gives back are faulted in
// again a moment later.
//
// The pool reserves an address range (PT_REGION_SIZE, not backed until
// touched) and hands out blocks of 40 size classes, 16 bytes to 32 KiB,
// from 64 KiB spans of one class each. A span's class, free blocks and
// count of blocks in use are kept in a side table, so blocks carry no
// header (a 24-byte PDF object takes 32 bytes, as with glibc). A class
// takes blocks from its current span (freed ones first, then the span's
// untouched rest), then from its other spans that have free blocks, then
// from a new span. It needs no lock: a context is used by one thread at a
// time. Larger blocks (fonts, decompressed streams), and everything when
// the range cannot be reserved or is full, go to malloc with a 16-byte
// header holding their size. A free of a pointer in the range that is not
// a block in use of a live span aborts (a free list is never corrupted);
// a second free of a block is not caught while its span has other blocks
// in use, so ASan and UBSan builds (scripts/sanitize.sh) see less with it
// than with malloc.
//
// Every trim (pt_trim) moves the spans left with no block in use to an
// idle list that all classes take spans from, before new ones: otherwise
// a span emptied by a trim stays with its class, and the other classes
// take new spans. When asked to, pt_trim also gives the pages of idle
// spans back to the system, keeping a few for the next page: the reader
// does after resolving the outline's targets, which parses many objects
// that no page needs again. The trims between pages keep the pages: the
// peak comes just before a trim.
#include "pt_mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum {
	pt_nclasses = 40,
	pt_max_small = 32 << 10,
	pt_span_shift = 16,
	pt_span_size = 1 << pt_span_shift,
	pt_header = 16,        // keeps malloc'd blocks 16-byte aligned
	pt_reserve_spans = 16, // empty spans pt_release keeps resident
	pt_idle = 0xfe,        // class of an empty span whose pages are resident
	pt_empty = 0xff,       // class of an empty span whose pages were given back
};
#define PT_REGION_SIZE ((size_t)512 << 20)
#define PT_NSPANS (PT_REGION_SIZE >> pt_span_shift)
#define PT_NO_SPAN UINT32_MAX

typedef struct {
	void *free;     // its free blocks
	uint32_t next;  // next span on its class's list of spans with free blocks, or on the empty list
	uint16_t used;  // blocks in use
	uint8_t cls;    // class, or pt_idle or pt_empty
	uint8_t listed; // on its class's list
} pt_span;

struct pt_mem {
	size_t live;   // bytes of the blocks MuPDF holds
	size_t pooled; // bytes of the spans taken and not given back
	char *region;  // the reserved range, NULL when there is none
	size_t region_size;
	uint32_t spans;                // spans taken from the range so far
	uint32_t cur[pt_nclasses];     // the span a class takes blocks from
	char *bump[pt_nclasses], *bump_end[pt_nclasses]; // its untouched rest
	uint32_t partial[pt_nclasses]; // other spans of the class with free blocks
	uint32_t idle;                 // empty spans with resident pages, reused first
	uint32_t empty;                // empty spans given back, reused next
	size_t limit;                  // 0 or the most live may reach
	size_t failures;               // allocations refused
	pt_span span[PT_NSPANS];
};

// pt_class is the size class of n (1 <= n <= pt_max_small): 16-byte steps
// to 128, then four classes per power of two.
static inline int pt_class(size_t n) {
	if (n <= 128) {
		return (int)((n + 15) >> 4) - 1;
	}
	size_t m = n - 1;
	int lg = 63 - __builtin_clzl((unsigned long)m);
	return 8 + (lg - 7) * 4 + (int)((m >> (lg - 2)) & 3);
}

static inline size_t pt_class_size(int c) {
	if (c < 8) {
		return (size_t)(c + 1) << 4;
	}
	int lg = (c - 8) / 4 + 7;
	return (size_t)(5 + (c - 8) % 4) << (lg - 2);
}

// pt_span_of returns the index of the span holding p, or PT_NO_SPAN when
// p was malloc'd.
static inline uint32_t pt_span_of(const pt_mem *m, const void *p) {
	if (m->region == NULL) {
		return PT_NO_SPAN;
	}
	uintptr_t off = (uintptr_t)p - (uintptr_t)m->region;
	return off < m->region_size ? (uint32_t)(off >> pt_span_shift) : PT_NO_SPAN;
}

// pt_pooled_class returns the class of a block in the pool, or -1 when p
// was malloc'd.
static inline int pt_pooled_class(const pt_mem *m, const void *p) {
	uint32_t s = pt_span_of(m, p);
	return s != PT_NO_SPAN ? m->span[s].cls : -1;
}

static inline char *pt_span_base(const pt_mem *m, uint32_t s) { return m->region + ((size_t)s << pt_span_shift); }

static void *pt_malloc_large(pt_mem *m, size_t n) {
	if (n > SIZE_MAX - pt_header) {
		return NULL;
	}
	size_t *b = malloc(pt_header + n);
	if (b == NULL) {
		return NULL;
	}
	b[0] = n;
	m->live += n;
	return (char *)b + pt_header;
}

// pt_new_span makes a span of class c the class's current one, from the
// empty spans or the rest of the range. Returns 0 when there is none.
static int pt_new_span(pt_mem *m, int c) {
	uint32_t s = m->idle;
	if (s != PT_NO_SPAN) {
		m->idle = m->span[s].next;
	} else if ((s = m->empty) != PT_NO_SPAN) {
		m->empty = m->span[s].next;
		m->pooled += pt_span_size;
	} else if (m->spans < m->region_size >> pt_span_shift) {
		s = m->spans++;
		m->pooled += pt_span_size;
	} else {
		return 0;
	}
	m->span[s] = (pt_span){NULL, PT_NO_SPAN, 0, (uint8_t)c, 0};
	m->cur[c] = s;
	m->bump[c] = pt_span_base(m, s);
	m->bump_end[c] = m->bump[c] + pt_span_size;
	return 1;
}

static void *pt_malloc(void *user, size_t n) {
	pt_mem *m = user;
	if (n == 0) {
		n = 1;
	}
	if (m->limit != 0 && (n > m->limit || m->live > m->limit - n)) {
		return NULL;
	}
	if (n > pt_max_small || m->region == NULL) {
		return pt_malloc_large(m, n);
	}
	int c = pt_class(n);
	size_t size = pt_class_size(c);
	uint32_t s = m->cur[c];
	void *p;
	for (;;) {
		if (s != PT_NO_SPAN) {
			pt_span *sp = &m->span[s];
			if (sp->free != NULL) {
				p = sp->free;
				sp->free = *(void **)p;
				break;
			}
			if ((size_t)(m->bump_end[c] - m->bump[c]) >= size) {
				p = m->bump[c];
				m->bump[c] += size;
				break;
			}
		}
		// The current span is full: the next one with free blocks, or a
		// new one.
		s = m->partial[c];
		if (s != PT_NO_SPAN) {
			m->partial[c] = m->span[s].next;
			m->span[s].listed = 0;
			m->cur[c] = s;
			m->bump[c] = m->bump_end[c] = NULL;
			continue;
		}
		if (!pt_new_span(m, c)) {
			return pt_malloc_large(m, n);
		}
		s = m->cur[c];
	}
	m->span[s].used++;
	m->live += size;
	return p;
}

static void pt_free(void *user, void *p) {
	pt_mem *m = user;
	if (p == NULL) {
		return;
	}
	uint32_t s = pt_span_of(m, p);
	if (s == PT_NO_SPAN) {
		size_t *b = (size_t *)((char *)p - pt_header);
		m->live -= b[0];
		free(b);
		return;
	}
	pt_span *sp = &m->span[s];
	int c = sp->cls;
	// A pointer that is not a block in use of a live span is a bug in
	// MuPDF or here: stop rather than corrupt the free lists.
	if (c >= pt_nclasses || sp->used == 0 ||
		((uintptr_t)p - (uintptr_t)pt_span_base(m, s)) % pt_class_size(c) != 0) {
		fprintf(stderr, "pdftext pool: free of %p, not a block in use\n", p);
		abort();
	}
	m->live -= pt_class_size(c);
	*(void **)p = sp->free;
	sp->free = p;
	sp->used--;
	if (!sp->listed && s != m->cur[c]) {
		sp->next = m->partial[c];
		m->partial[c] = s;
		sp->listed = 1;
	}
}

// pt_give_back returns the pages of n spans from span s to the system.
static void pt_give_back(pt_mem *m, uint32_t s, uint32_t n) {
#ifdef MADV_DONTNEED
	if (n > 0) {
		madvise(pt_span_base(m, s), (size_t)n * pt_span_size, MADV_DONTNEED);
	}
#else
	(void)m, (void)s, (void)n;
#endif
}

// pt_release rebuilds the class lists: spans with no block in use leave
// their class for the idle list. With give_back, the pages of idle spans
// but for pt_reserve_spans are returned to the system, and those spans go
// to the empty list.
static void pt_release(pt_mem *m, int give_back) {
	if (m->region == NULL) {
		return;
	}
	int kept = 0;
	// Neighbouring spans are given back in one call: each call makes the
	// kernel interrupt the other cores running this process's threads.
	uint32_t run = 0, run_len = 0;
	for (int c = 0; c < pt_nclasses; c++) {
		m->partial[c] = PT_NO_SPAN;
	}
	m->idle = m->empty = PT_NO_SPAN;
	for (uint32_t s = m->spans; s-- > 0;) {
		pt_span *sp = &m->span[s];
		if (sp->cls == pt_empty) {
			sp->next = m->empty;
			m->empty = s;
			continue;
		}
		if (sp->cls != pt_idle) {
			sp->listed = 0;
			if (s == m->cur[sp->cls]) {
				continue;
			}
			if (sp->used > 0) {
				if (sp->free != NULL) {
					sp->next = m->partial[sp->cls];
					m->partial[sp->cls] = s;
					sp->listed = 1;
				}
				continue;
			}
		}
		if (!give_back || kept < pt_reserve_spans) {
			kept++;
			*sp = (pt_span){NULL, m->idle, 0, pt_idle, 0};
			m->idle = s;
			continue;
		}
		if (run_len > 0 && s + 1 == run) {
			run = s;
			run_len++;
		} else {
			pt_give_back(m, run, run_len);
			run = s;
			run_len = 1;
		}
		*sp = (pt_span){NULL, m->empty, 0, pt_empty, 0};
		m->empty = s;
		m->pooled -= pt_span_size;
	}
	pt_give_back(m, run, run_len);
}

static void *pt_realloc(void *user, void *old, size_t n) {
	pt_mem *m = user;
	if (old == NULL) {
		return pt_malloc(user, n);
	}
	if (n == 0) {
		pt_free(user, old);
		return NULL;
	}
	int c = pt_pooled_class(m, old);
	size_t have;
	if (c >= 0) {
		have = pt_class_size(c);
		if (n <= have && (c == 0 || n > pt_class_size(c - 1))) {
			return old; // same class
		}
	} else {
		size_t *b = (size_t *)((char *)old - pt_header);
		have = b[0];
		if (n > pt_max_small || m->region == NULL) {
			if (n > SIZE_MAX - pt_header) {
				return NULL;
			}
			size_t *nb = realloc(b, pt_header + n);
			if (nb == NULL) {
				return NULL;
			}
			nb[0] = n;
			m->live += n - have;
			return (char *)nb + pt_header;
		}
	}
	void *p = pt_malloc(user, n);
	if (p == NULL) {
		return NULL;
	}
	memcpy(p, old, have < n ? have : n);
	pt_free(user, old);
	return p;
}

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

// pt_new_mem makes a pool with a range of region_size bytes (at most
// PT_REGION_SIZE, a multiple of pt_span_size), or none if that cannot be
// reserved.
static pt_mem *pt_new_mem(size_t region_size) {
	pt_mem *m = calloc(1, sizeof(pt_mem));
	if (m == NULL) {
		return NULL;
	}
	void *r = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r != MAP_FAILED) {
		m->region = r;
		m->region_size = region_size;
	}
	for (int c = 0; c < pt_nclasses; c++) {
		m->cur[c] = m->partial[c] = PT_NO_SPAN;
	}
	m->idle = m->empty = PT_NO_SPAN;
	return m;
}

static void pt_drop_mem(pt_mem *m) {
	if (m->region != NULL) {
		munmap(m->region, m->region_size);
	}
	free(m);
}

pt_mem *pt_mem_new(void) { return pt_new_mem(PT_REGION_SIZE); }
void pt_mem_drop(pt_mem *m) { pt_drop_mem(m); }

void *pt_mem_malloc(void *user, size_t n) {
	void *p = pt_malloc(user, n);
	if (p == NULL) {
		((pt_mem *)user)->failures++;
	}
	return p;
}

void *pt_mem_realloc(void *user, void *old, size_t n) {
	pt_mem *m = user;
	if (old != NULL && n > 0 && m->limit != 0 && (n > m->limit || m->live > m->limit - n)) {
		m->failures++;
		return NULL;
	}
	void *p = pt_realloc(user, old, n);
	if (p == NULL && n > 0) {
		m->failures++;
	}
	return p;
}

void pt_mem_free(void *user, void *p) { pt_free(user, p); }
size_t pt_mem_live(const pt_mem *m) { return m->live; }
size_t pt_mem_pooled(const pt_mem *m) { return m->pooled; }
size_t pt_mem_failures(const pt_mem *m) { return m->failures; }
void pt_mem_set_limit(pt_mem *m, size_t limit) { m->limit = limit; }
void pt_mem_release(pt_mem *m, int give_back) { pt_release(m, give_back); }
const char *pt_mem_kind(void) { return "pool"; }

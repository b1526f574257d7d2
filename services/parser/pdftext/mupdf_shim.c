//go:build cgo && !nomupdf

#include "mupdf_shim.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__linux__)
#include <malloc.h>
#endif

typedef struct {
	void *user;
	void *(*malloc_)(void *, size_t);
	void *(*realloc_)(void *, void *, size_t);
	void (*free_)(void *, void *);
} fz_alloc_context;
typedef struct fz_locks_context fz_locks_context;
typedef struct fz_stream fz_stream;
typedef struct fz_page fz_page;
typedef struct fz_device fz_device;
typedef struct fz_font fz_font;
typedef struct fz_pool fz_pool;
typedef struct fz_image fz_image;
typedef void(fz_error_cb)(void *user, const char *message);

// Geometry and structured text as in mupdf/fitz/geometry.h and
// structured-text.h (1.24.9).
typedef struct { float x, y; } fz_point;
typedef struct { float x0, y0, x1, y1; } fz_rect;
typedef struct { float a, b, c, d, e, f; } fz_matrix;
typedef struct { fz_point ul, ur, ll, lr; } fz_quad;
typedef struct { int flags; float scale; } fz_stext_options;
typedef struct fz_stext_char fz_stext_char;
typedef struct fz_stext_line fz_stext_line;
typedef struct fz_stext_block fz_stext_block;
typedef struct {
	fz_pool *pool;
	fz_rect mediabox;
	fz_stext_block *first_block, *last_block;
} fz_stext_page;
enum { FZ_STEXT_BLOCK_TEXT = 0 };
struct fz_stext_block {
	int type;
	fz_rect bbox;
	union {
		struct { fz_stext_line *first_line, *last_line; } t;
		struct { fz_matrix transform; fz_image *image; } i;
	} u;
	fz_stext_block *prev, *next;
};
struct fz_stext_line {
	int wmode;
	fz_point dir;
	fz_rect bbox;
	fz_stext_char *first_char, *last_char;
	fz_stext_line *prev, *next;
};
struct fz_stext_char {
	int c;
	int bidi;
	int color;
	fz_point origin;
	fz_quad quad;
	float size;
	fz_font *font;
	fz_stext_char *next;
};
enum { FZ_DONT_DECODE_IMAGES = 4 };
static const fz_matrix pt_identity = {1, 0, 0, 1, 0, 0};

// MuPDF 1.24.9 API, see include/mupdf/fitz in go-fitz.
fz_context *fz_new_context_imp(const fz_alloc_context *alloc, const fz_locks_context *locks, size_t max_store, const char *version);
void fz_drop_context(fz_context *ctx);
void fz_set_error_callback(fz_context *ctx, fz_error_cb *cb, void *user);
void fz_set_warning_callback(fz_context *ctx, fz_error_cb *cb, void *user);
void fz_register_document_handlers(fz_context *ctx);
void fz_disable_icc(fz_context *ctx);
fz_stream *fz_open_file(fz_context *ctx, const char *filename);
void fz_drop_stream(fz_context *ctx, fz_stream *stm);
fz_document *fz_open_document_with_stream(fz_context *ctx, const char *magic, fz_stream *stream);
void fz_drop_document(fz_context *ctx, fz_document *doc);
int fz_needs_password(fz_context *ctx, fz_document *doc);
int fz_authenticate_password(fz_context *ctx, fz_document *doc, const char *password);
int fz_count_pages(fz_context *ctx, fz_document *doc);
fz_buffer *fz_new_buffer_from_page_number(fz_context *ctx, fz_document *doc, int number, const void *options);
size_t fz_buffer_storage(fz_context *ctx, fz_buffer *buf, unsigned char **datap);
void fz_drop_buffer(fz_context *ctx, fz_buffer *buf);
const char *fz_caught_message(fz_context *ctx);
fz_page *fz_load_page(fz_context *ctx, fz_document *doc, int number);
void fz_drop_page(fz_context *ctx, fz_page *page);
fz_rect fz_bound_page(fz_context *ctx, fz_page *page);
void fz_run_page(fz_context *ctx, fz_page *page, fz_device *dev, fz_matrix transform, fz_cookie *cookie);
fz_stext_page *fz_new_stext_page(fz_context *ctx, fz_rect mediabox);
void fz_drop_stext_page(fz_context *ctx, fz_stext_page *page);
fz_device *fz_new_stext_device(fz_context *ctx, fz_stext_page *page, const fz_stext_options *options);
void fz_enable_device_hints(fz_context *ctx, fz_device *dev, int hints);
void fz_close_device(fz_context *ctx, fz_device *dev);
void fz_drop_device(fz_context *ctx, fz_device *dev);
fz_buffer *fz_new_buffer(fz_context *ctx, size_t capacity);
void fz_append_data(fz_context *ctx, fz_buffer *buf, const void *data, size_t len);
int fz_font_is_bold(fz_context *ctx, fz_font *font);
int fz_runetochar(char *str, int rune);
typedef struct fz_outline_iterator fz_outline_iterator;
typedef struct {
	char *title;
	char *uri;
	int is_open;
} fz_outline_item;
fz_outline_iterator *fz_new_outline_iterator(fz_context *ctx, fz_document *doc);
void fz_drop_outline_iterator(fz_context *ctx, fz_outline_iterator *iter);
fz_outline_item *fz_outline_iterator_item(fz_context *ctx, fz_outline_iterator *iter);
int fz_outline_iterator_next(fz_context *ctx, fz_outline_iterator *iter);
int fz_outline_iterator_up(fz_context *ctx, fz_outline_iterator *iter);
int fz_outline_iterator_down(fz_context *ctx, fz_outline_iterator *iter);
int fz_is_external_link(fz_context *ctx, const char *uri);
fz_location fz_resolve_link(fz_context *ctx, fz_document *doc, const char *uri, float *xp, float *yp);
typedef struct pdf_document pdf_document;
typedef struct pdf_obj pdf_obj;
pdf_document *pdf_document_from_fz_document(fz_context *ctx, fz_document *doc);
void pdf_clear_xref(fz_context *ctx, pdf_document *doc);
pdf_obj *pdf_lookup_page_obj(fz_context *ctx, pdf_document *doc, int needle);
int pdf_to_num(fz_context *ctx, pdf_obj *obj);
fz_stream *fz_open_memory(fz_context *ctx, const unsigned char *data, size_t len);
void fz_set_user_context(fz_context *ctx, void *user);
void *fz_user_context(fz_context *ctx);
pdf_obj *pdf_load_name_tree(fz_context *ctx, pdf_document *doc, pdf_obj *which);
pdf_obj *pdf_new_name(fz_context *ctx, const char *str);
pdf_obj *pdf_dict_gets(fz_context *ctx, pdf_obj *dict, const char *key);
int pdf_is_dict(fz_context *ctx, pdf_obj *obj);
void pdf_sort_dict(fz_context *ctx, pdf_obj *dict);
void pdf_drop_obj(fz_context *ctx, pdf_obj *obj);
char *pdf_parse_link_dest(fz_context *ctx, pdf_document *doc, pdf_obj *dest);
char *fz_decode_uri_component(fz_context *ctx, const char *s);
void fz_free(fz_context *ctx, void *p);

// fz_try/fz_catch as defined in mupdf/fitz/context.h and system.h (MuPDF
// uses sigsetjmp/siglongjmp on unix, setjmp/longjmp elsewhere).
#if defined(__unix) || defined(__unix__) || defined(__APPLE__)
sigjmp_buf *fz_push_try(fz_context *ctx);
#define PT_SETJMP(buf) sigsetjmp(buf, 0)
#else
jmp_buf *fz_push_try(fz_context *ctx);
#define PT_SETJMP(buf) setjmp(buf)
#endif
int fz_do_try(fz_context *ctx);
int fz_do_catch(fz_context *ctx);

#define PT_TRY(ctx) if (!PT_SETJMP(*fz_push_try(ctx))) if (fz_do_try(ctx)) do
#define PT_CATCH(ctx) while (0); if (fz_do_catch(ctx))

// MuPDF prints warnings and errors to stderr by default; errors that
// matter come back through fz_caught_message instead.
static void pt_quiet(void *user, const char *message) { (void)user; (void)message; }

// CJK stand-in fonts. go-fitz builds MuPDF without its CJK fonts, so an
// unembedded Japanese, Chinese or Korean CID font (pTeX's Ryumin-Light,
// Acrobat's STSong-Light, ...) failed to load and MuPDF drew its text in a
// one-byte Latin font instead: Latin-1 mojibake and U+FFFD, although the
// text is fully known from the font's collection CMaps (CID -> Unicode,
// which the bundled MuPDF has). MuPDF asks this callback before its
// builtin CJK fonts; a Latin font does as a stand-in: text extraction
// takes characters from the CMaps and advances from the PDF's widths,
// never from the font's glyphs.
typedef fz_font *(fz_load_system_font_fn)(fz_context *ctx, const char *name, int bold, int italic, int needs_exact_metrics);
typedef fz_font *(fz_load_system_cjk_font_fn)(fz_context *ctx, const char *name, int ordering, int serif);
typedef fz_font *(fz_load_system_fallback_font_fn)(fz_context *ctx, int script, int language, int serif, int bold, int italic);
void fz_install_load_system_font_funcs(fz_context *ctx, fz_load_system_font_fn *f, fz_load_system_cjk_font_fn *f_cjk,
	fz_load_system_fallback_font_fn *f_fallback);
fz_font *fz_new_base14_font(fz_context *ctx, const char *name);

static fz_font *pt_load_cjk_font(fz_context *ctx, const char *name, int ordering, int serif) {
	(void)name;
	(void)ordering;
	return fz_new_base14_font(ctx, serif ? "Times-Roman" : "Helvetica");
}

static void pt_caught(fz_context *ctx, char *errbuf, int errlen) {
	if (errlen > 0) {
		snprintf(errbuf, (size_t)errlen, "%s", fz_caught_message(ctx));
	}
}

// Memory: each context allocates through its own pool (pt_mem). MuPDF
// makes and frees millions of small objects per document (parsed PDF
// objects, structured-text characters, lexer buffers). Through glibc's
// malloc each one takes arena locks shared with the other workers'
// threads, and the pages that pdf_clear_xref frees and malloc_trim gives
// back are faulted in again a moment later (page faults and, with two
// workers, TLB shootdowns between the cores): two workers spent 50 % more
// CPU than one on the same pages.
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
// header holding their size.
//
// Every trim (pt_trim) moves the spans left with no block in use to an
// idle list that all classes take spans from, before new ones: otherwise
// a span emptied by a trim stays with its class, and the other classes
// take new spans (a 2,415-page manual: the pool's pages grew from 6 to 8
// MiB over the pages). When asked to, pt_trim also gives the pages of
// idle spans back to the system, keeping a few for the next page: the
// reader does after resolving the outline's targets, which parses many
// objects that no page needs again (on a 2,415-page manual 116 of 130
// spans are empty then; the parser service's peak fell from 41 to 39
// MiB). The trims between pages keep the pages: giving them back and
// faulting them in again cost two workers 3 % and did not lower the peak,
// which comes just before a trim.
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

typedef struct {
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
	pt_span span[PT_NSPANS];
} pt_mem;

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

size_t pt_pooled_bytes(fz_context *ctx) {
	pt_mem *m = ctx != NULL ? fz_user_context(ctx) : NULL;
	return m != NULL ? m->pooled : 0;
}

size_t pt_live_bytes(fz_context *ctx) {
	pt_mem *m = ctx != NULL ? fz_user_context(ctx) : NULL;
	return m != NULL ? m->live : 0;
}

// pt_new_context makes a context that counts its memory in a pt_mem
// (released by pt_drop_context).
static fz_context *pt_new_context(size_t max_store) {
	pt_mem *m = pt_new_mem(PT_REGION_SIZE);
	if (m == NULL) {
		return NULL;
	}
	fz_alloc_context alloc = {m, pt_malloc, pt_realloc, pt_free};
	fz_context *ctx = fz_new_context_imp(&alloc, NULL, max_store, PT_FZ_VERSION);
	if (ctx == NULL) {
		pt_drop_mem(m);
		return NULL;
	}
	fz_set_user_context(ctx, m);
	// Text needs no colour management: without it, the first colour
	// each context converts does not build ICC transforms (lcms2), which
	// took 1.5 % of a 2,415-page manual and more of a short document.
	fz_disable_icc(ctx);
	fz_set_error_callback(ctx, pt_quiet, NULL);
	fz_set_warning_callback(ctx, pt_quiet, NULL);
	fz_install_load_system_font_funcs(ctx, NULL, pt_load_cjk_font, NULL);
	return ctx;
}

static void pt_drop_context(fz_context *ctx) {
	pt_mem *m = fz_user_context(ctx);
	fz_drop_context(ctx);
	pt_drop_mem(m);
}

// The page-tree mark (see pt_lazy_page_tree in the header). Fields are
// looked for in the first pt_probe_span bytes of pdf_document; in 1.24.9
// the page count of the map, the two map pointers and the mark follow
// each other a little over 300 bytes in, well inside the structure.
enum { pt_probe_span = 400, pt_probe_pages = 7 };
static pthread_once_t pt_probe_once = PTHREAD_ONCE_INIT;
static long pt_broken_offset = -1;

// pt_probe_pdf writes a valid PDF of pt_probe_pages empty pages in one
// flat page tree into buf and returns its length, or 0 if buf is short.
static size_t pt_probe_pdf(char *buf, size_t cap) {
	long offs[3 + pt_probe_pages];
	size_t n = 0;
	int k, w;
#define PT_PUT(...) \
	do { \
		w = snprintf(buf + n, cap - n, __VA_ARGS__); \
		if (w < 0 || (size_t)w >= cap - n) return 0; \
		n += (size_t)w; \
	} while (0)
	PT_PUT("%%PDF-1.4\n");
	offs[1] = (long)n;
	PT_PUT("1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n");
	offs[2] = (long)n;
	PT_PUT("2 0 obj\n<</Type/Pages/Count %d/Kids[", pt_probe_pages);
	for (k = 0; k < pt_probe_pages; k++) {
		PT_PUT("%d 0 R ", 3 + k);
	}
	PT_PUT("]>>\nendobj\n");
	for (k = 0; k < pt_probe_pages; k++) {
		offs[3 + k] = (long)n;
		PT_PUT("%d 0 obj\n<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>\nendobj\n", 3 + k);
	}
	long xref = (long)n;
	PT_PUT("xref\n0 %d\n0000000000 65535 f \n", 3 + pt_probe_pages);
	for (k = 1; k < 3 + pt_probe_pages; k++) {
		PT_PUT("%010ld 00000 n \n", offs[k]);
	}
	PT_PUT("trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%ld\n%%%%EOF\n", 3 + pt_probe_pages, xref);
#undef PT_PUT
	return n;
}

static int pt_int_at(const unsigned char *b, long off) {
	int v;
	memcpy(&v, b + off, sizeof v);
	return v;
}

static void *pt_ptr_at(const unsigned char *b, long off) {
	void *v;
	memcpy(&v, b + off, sizeof v);
	return v;
}

// pt_find_broken_offset returns the offset of the mark given the bytes of
// a pdf_document before and after MuPDF built its page map, or -1 unless
// exactly one place looks like {int count: 0 -> pages; map pointers:
// NULL -> set; int mark: 0 -> 0}.
static long pt_find_broken_offset(const unsigned char *before, const unsigned char *after) {
	long found = -1;
	const long ps = (long)sizeof(void *);
	for (long o = 0; o + 4 <= pt_probe_span; o += 4) {
		if (pt_int_at(before, o) != 0 || pt_int_at(after, o) != pt_probe_pages) {
			continue;
		}
		long q = (o + 4 + ps - 1) / ps * ps;
		if (q + 2 * ps + 4 > pt_probe_span) {
			continue;
		}
		if (pt_ptr_at(before, q) != NULL || pt_ptr_at(before, q + ps) != NULL ||
			pt_ptr_at(after, q) == NULL || pt_ptr_at(after, q + ps) == NULL ||
			pt_int_at(before, q + 2 * ps) != 0 || pt_int_at(after, q + 2 * ps) != 0) {
			continue;
		}
		if (found >= 0) {
			return -1; // ambiguous
		}
		found = q + 2 * ps;
	}
	return found;
}

static void pt_probe(void) {
	char pdfbuf[2048];
	size_t len = pt_probe_pdf(pdfbuf, sizeof pdfbuf);
	fz_context *ctx = len > 0 ? pt_new_context(1 << 20) : NULL;
	fz_document *volatile doc1 = NULL, *volatile doc2 = NULL;
	fz_stream *volatile stm = NULL;
	volatile long found = -1;
	if (ctx == NULL) {
		return;
	}
	PT_TRY(ctx) {
		unsigned char before[pt_probe_span], after[pt_probe_span];
		fz_register_document_handlers(ctx);
		stm = fz_open_memory(ctx, (const unsigned char *)pdfbuf, len);
		doc1 = fz_open_document_with_stream(ctx, "application/pdf", stm);
		fz_drop_stream(ctx, stm);
		stm = NULL;
		pdf_document *pdf1 = pdf_document_from_fz_document(ctx, doc1);
		if (pdf1 != NULL && fz_count_pages(ctx, doc1) == pt_probe_pages) {
			memcpy(before, pdf1, sizeof before);
			pdf_obj *want = pdf_lookup_page_obj(ctx, pdf1, 5); // builds the map
			memcpy(after, pdf1, sizeof after);
			long off = pt_find_broken_offset(before, after);
			const long ps = (long)sizeof(void *);
			// The forward map must hold that very page object.
			if (off >= 0 && ((pdf_obj **)pt_ptr_at(after, off - ps))[5] == want) {
				stm = fz_open_memory(ctx, (const unsigned char *)pdfbuf, len);
				doc2 = fz_open_document_with_stream(ctx, "application/pdf", stm);
				fz_drop_stream(ctx, stm);
				stm = NULL;
				pdf_document *pdf2 = pdf_document_from_fz_document(ctx, doc2);
				*(int *)((unsigned char *)pdf2 + off) = 1;
				pdf_obj *got = pdf_lookup_page_obj(ctx, pdf2, 5);
				// The walk found the same page and no map was built.
				if (pdf_to_num(ctx, got) == pdf_to_num(ctx, want) &&
					pt_ptr_at((unsigned char *)pdf2, off - ps) == NULL &&
					pt_int_at((unsigned char *)pdf2, off - 2 * ps) == 0) {
					found = off;
				}
			}
		}
	}
	PT_CATCH(ctx) {
		found = -1;
	}
	PT_TRY(ctx) {
		fz_drop_stream(ctx, stm);
		fz_drop_document(ctx, doc2);
		fz_drop_document(ctx, doc1);
	}
	PT_CATCH(ctx) {
	}
	pt_drop_context(ctx);
	pt_broken_offset = found;
}

int pt_lazy_page_tree(void) {
	pthread_once(&pt_probe_once, pt_probe);
	return pt_broken_offset >= 0;
}

int pt_open(const char *filename, const char *password, size_t max_store, int full_page_tree,
	fz_context **pctx, fz_document **pdoc, int *pages, char *errbuf, int errlen) {
	fz_context *ctx;
	fz_stream *volatile stm = NULL;
	fz_document *volatile doc = NULL;
	volatile int rc = PT_OK;
	volatile int n = 0;

	*pctx = NULL;
	*pdoc = NULL;
	*pages = 0;
	ctx = pt_new_context(max_store);
	if (ctx == NULL) {
		snprintf(errbuf, (size_t)errlen, "cannot create mupdf context (library version is not %s?)", PT_FZ_VERSION);
		return PT_ERR_CONTEXT;
	}

	PT_TRY(ctx) {
		fz_register_document_handlers(ctx);
		stm = fz_open_file(ctx, filename);
		doc = fz_open_document_with_stream(ctx, "application/pdf", stm);
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		rc = PT_ERR_OPEN;
	}
	fz_drop_stream(ctx, stm); // the document holds its own reference
	if (rc == PT_OK && doc == NULL) {
		snprintf(errbuf, (size_t)errlen, "no document");
		rc = PT_ERR_OPEN;
	}

	if (rc == PT_OK) {
		PT_TRY(ctx) {
			if (fz_needs_password(ctx, doc) && !fz_authenticate_password(ctx, doc, password)) {
				rc = PT_ERR_PASSWORD;
			}
		}
		PT_CATCH(ctx) {
			pt_caught(ctx, errbuf, errlen);
			rc = PT_ERR_PASSWORD;
		}
	}

	if (rc == PT_OK) {
		PT_TRY(ctx) {
			n = fz_count_pages(ctx, doc);
		}
		PT_CATCH(ctx) {
			pt_caught(ctx, errbuf, errlen);
			rc = PT_ERR_PAGES;
		}
	}

	if (rc != PT_OK) {
		pt_close(ctx, doc);
		return rc;
	}
	if (!full_page_tree && pt_lazy_page_tree()) {
		pdf_document *pdf = pdf_document_from_fz_document(ctx, doc);
		if (pdf != NULL) {
			*(int *)((unsigned char *)pdf + pt_broken_offset) = 1;
		}
	}
	*pctx = ctx;
	*pdoc = doc;
	*pages = n;
	return PT_OK;
}

fz_buffer *pt_page_text(fz_context *ctx, fz_document *doc, int n, char *errbuf, int errlen) {
	fz_buffer *volatile buf = NULL;
	PT_TRY(ctx) {
		buf = fz_new_buffer_from_page_number(ctx, doc, n, NULL);
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		return NULL;
	}
	if (buf == NULL) {
		snprintf(errbuf, (size_t)errlen, "no text buffer");
	}
	return buf;
}

size_t pt_buffer_data(fz_context *ctx, fz_buffer *buf, unsigned char **data) {
	return fz_buffer_storage(ctx, buf, data);
}

void pt_drop_buffer(fz_context *ctx, fz_buffer *buf) {
	PT_TRY(ctx) {
		fz_drop_buffer(ctx, buf);
	}
	PT_CATCH(ctx) {
	}
}

void pt_close(fz_context *ctx, fz_document *doc) {
	if (ctx == NULL) {
		return;
	}
	PT_TRY(ctx) {
		fz_drop_document(ctx, doc);
	}
	PT_CATCH(ctx) {
	}
	pt_drop_context(ctx);
}


// linebuf collects one line's UTF-8 text.
typedef struct {
	char *data;
	size_t len, cap;
} pt_linebuf;

static int pt_linebuf_put(pt_linebuf *b, const char *s, size_t n) {
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n) {
			cap *= 2;
		}
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			return 0;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	return 1;
}

static void pt_put_rect(fz_context *ctx, fz_buffer *out, fz_rect r) {
	float f[4] = {r.x0, r.y0, r.x1, r.y1};
	fz_append_data(ctx, out, f, sizeof f);
}

static inline float pt_min(float a, float b) { return a < b ? a : b; }
static inline float pt_max(float a, float b) { return a > b ? a : b; }

// pt_outside reports whether a character's quad lies entirely outside r.
static inline int pt_outside(const fz_quad *q, fz_rect r) {
	float x0 = pt_min(pt_min(q->ul.x, q->ur.x), pt_min(q->ll.x, q->lr.x));
	float x1 = pt_max(pt_max(q->ul.x, q->ur.x), pt_max(q->ll.x, q->lr.x));
	float y0 = pt_min(pt_min(q->ul.y, q->ur.y), pt_min(q->ll.y, q->lr.y));
	float y1 = pt_max(pt_max(q->ul.y, q->ur.y), pt_max(q->ll.y, q->lr.y));
	return x1 < r.x0 || x0 > r.x1 || y1 < r.y0 || y0 > r.y1;
}

static inline void pt_union_quad(fz_rect *r, const fz_quad *q) {
	const fz_point p[4] = {q->ul, q->ur, q->ll, q->lr};
	for (int k = 0; k < 4; k++) {
		r->x0 = pt_min(r->x0, p[k].x);
		r->y0 = pt_min(r->y0, p[k].y);
		r->x1 = pt_max(r->x1, p[k].x);
		r->y1 = pt_max(r->y1, p[k].y);
	}
}

// pt_serialise writes the text blocks of page to out; it may throw.
// Characters entirely outside the page's media box are left out (MuPDF's
// FZ_STEXT_MEDIABOX_CLIP does the same from each glyph's outline, at
// about 3 % of the extraction time; the quads are already at hand here),
// and so are the lines and blocks left empty by that.
static void pt_serialise(fz_context *ctx, fz_stext_page *page, fz_buffer *out, pt_linebuf *lb) {
	fz_font *last_font = NULL;
	int last_bold = 0;
	const fz_rect media = page->mediabox;
	for (fz_stext_block *block = page->first_block; block; block = block->next) {
		if (block->type != FZ_STEXT_BLOCK_TEXT) {
			continue;
		}
		int block_written = 0;
		for (fz_stext_line *line = block->u.t.first_line; line; line = line->next) {
			float sizes[4] = {0};
			int counts[4] = {0};
			int nsizes = 0, visible = 0, bold = 0, kept = 0, clipped = 0;
			fz_rect bbox = {INFINITY, INFINITY, -INFINITY, -INFINITY};
			lb->len = 0;
			for (fz_stext_char *ch = line->first_char; ch; ch = ch->next) {
				if (pt_outside(&ch->quad, media)) {
					clipped = 1;
					continue;
				}
				kept++;
				pt_union_quad(&bbox, &ch->quad);
				char utf[8];
				int n = fz_runetochar(utf, ch->c);
				if (!pt_linebuf_put(lb, utf, (size_t)n)) {
					return; // out of memory: the page is cut short here
				}
				if (ch->c == ' ' || ch->c == '\t') {
					continue;
				}
				visible++;
				if (ch->font != last_font) {
					last_font = ch->font;
					last_bold = ch->font ? fz_font_is_bold(ctx, ch->font) : 0;
				}
				bold += last_bold;
				int k;
				for (k = 0; k < nsizes && sizes[k] != ch->size; k++) {
				}
				if (k == nsizes && nsizes < 4) {
					sizes[nsizes++] = ch->size;
				}
				if (k < nsizes) {
					counts[k]++;
				}
			}
			if (kept == 0) {
				continue;
			}
			if (!clipped) {
				bbox = line->bbox;
			}
			if (!block_written) {
				unsigned char tag = PT_REC_BLOCK;
				fz_append_data(ctx, out, &tag, 1);
				pt_put_rect(ctx, out, block->bbox);
				block_written = 1;
			}
			float size = 0;
			int best = -1;
			for (int k = 0; k < nsizes; k++) {
				if (counts[k] > best) {
					best = counts[k];
					size = sizes[k];
				}
			}
			unsigned char rec[1 + 5 * sizeof(float) + 1 + 4];
			float f[5] = {bbox.x0, bbox.y0, bbox.x1, bbox.y1, size};
			unsigned int n = (unsigned int)lb->len;
			rec[0] = PT_REC_LINE;
			memcpy(rec + 1, f, sizeof f);
			rec[1 + sizeof f] = (visible > 0 && 2 * bold > visible) ? PT_LINE_BOLD : 0;
			memcpy(rec + 2 + sizeof f, &n, 4);
			fz_append_data(ctx, out, rec, sizeof rec);
			fz_append_data(ctx, out, lb->data, lb->len);
		}
	}
}

fz_buffer *pt_page_layout(fz_context *ctx, fz_document *doc, int n, int stext_flags, fz_cookie *cookie,
	int *aborted, char *errbuf, int errlen) {
	fz_page *volatile page = NULL;
	fz_stext_page *volatile stext = NULL;
	fz_device *volatile dev = NULL;
	fz_buffer *volatile out = NULL;
	volatile int failed = 0;
	pt_linebuf lb = {NULL, 0, 0};
	fz_stext_options opts = {stext_flags, 1};

	*aborted = 0;
	PT_TRY(ctx) {
		page = fz_load_page(ctx, doc, n);
		fz_rect bounds = fz_bound_page(ctx, page);
		stext = fz_new_stext_page(ctx, bounds);
		dev = fz_new_stext_device(ctx, stext, &opts);
		// Text needs no pixels: do not decode images.
		fz_enable_device_hints(ctx, dev, FZ_DONT_DECODE_IMAGES);
		fz_run_page(ctx, page, dev, pt_identity, cookie);
		fz_close_device(ctx, dev);
		if (cookie != NULL && cookie->abort) {
			*aborted = 1;
		} else {
			out = fz_new_buffer(ctx, 4096);
			unsigned char tag = PT_REC_PAGE;
			fz_append_data(ctx, out, &tag, 1);
			pt_put_rect(ctx, out, bounds);
			pt_serialise(ctx, stext, out, &lb);
		}
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		failed = 1;
	}
	if (cookie != NULL && cookie->abort) {
		*aborted = 1;
	}
	free(lb.data);
	PT_TRY(ctx) {
		fz_drop_device(ctx, dev);
		fz_drop_stext_page(ctx, stext);
		fz_drop_page(ctx, page);
		if ((failed || *aborted) && out != NULL) {
			fz_drop_buffer(ctx, out);
			out = NULL;
		}
	}
	PT_CATCH(ctx) {
	}
	if (out == NULL && !*aborted && !failed) {
		snprintf(errbuf, (size_t)errlen, "no text buffer");
	}
	return out;
}

void pt_trim(fz_context *ctx, fz_document *doc, int give_back) {
	PT_TRY(ctx) {
		pdf_document *pdf = pdf_document_from_fz_document(ctx, doc);
		if (pdf != NULL) {
			pdf_clear_xref(ctx, pdf);
		}
	}
	PT_CATCH(ctx) {
	}
	pt_release(fz_user_context(ctx), give_back);
#if defined(__GLIBC__)
	// Give the freed pages back to the system too, or the resident size
	// keeps the high-water mark of every object stream ever parsed.
	malloc_trim(0);
#endif
}

void pt_trim(fz_context *ctx, fz_document *doc, int give_back);

typedef struct {
	fz_document *doc;
	fz_outline_iterator *iter;
	fz_buffer *out;
	int items, max_items, max_depth;
} pt_outline_walk;

// pt_walk_level records the entries from the iterator's position to the
// end of its level, and their children; it may throw.
static void pt_walk_level(fz_context *ctx, pt_outline_walk *w, int level) {
	do {
		fz_outline_item *item = fz_outline_iterator_item(ctx, w->iter);
		if (item == NULL || w->items >= w->max_items) {
			return;
		}
		const char *title = item->title ? item->title : "";
		const char *uri = item->uri ? item->uri : "";
		unsigned int n = (unsigned int)strlen(title), m = (unsigned int)strlen(uri);
		fz_append_data(ctx, w->out, &level, sizeof level);
		fz_append_data(ctx, w->out, &n, sizeof n);
		fz_append_data(ctx, w->out, title, n);
		fz_append_data(ctx, w->out, &m, sizeof m);
		fz_append_data(ctx, w->out, uri, m);
		w->items++;
		if (level < w->max_depth) {
			int r = fz_outline_iterator_down(ctx, w->iter);
			if (r == 0) {
				pt_walk_level(ctx, w, level + 1);
			}
			if (r >= 0) {
				fz_outline_iterator_up(ctx, w->iter);
			}
		}
	} while (fz_outline_iterator_next(ctx, w->iter) == 0);
}

fz_buffer *pt_outline_records(fz_context *ctx, fz_document *doc, int max_items, int max_depth,
	int *failed, char *errbuf, int errlen) {
	pt_outline_walk w = {doc, NULL, NULL, 0, max_items, max_depth};
	fz_outline_iterator *volatile iter = NULL;
	fz_buffer *volatile out = NULL;
	*failed = 0;
	PT_TRY(ctx) {
		iter = fz_new_outline_iterator(ctx, doc);
		out = fz_new_buffer(ctx, 1024);
		w.iter = iter;
		w.out = out;
		if (iter != NULL) {
			pt_walk_level(ctx, &w, 1);
		}
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		*failed = 1;
	}
	PT_TRY(ctx) {
		fz_drop_outline_iterator(ctx, iter);
		if (*failed || w.items == 0) {
			fz_drop_buffer(ctx, out);
			out = NULL;
		}
	}
	PT_CATCH(ctx) {
	}
	return out;
}

static const char pt_nameddest[] = "#nameddest=";

// pt_load_dests reads the document's destination name tree into one
// sorted dictionary (NULL when there is none). May throw.
static pdf_obj *pt_load_dests(fz_context *ctx, fz_document *doc) {
	pdf_document *pdf = pdf_document_from_fz_document(ctx, doc);
	if (pdf == NULL) {
		return NULL;
	}
	pdf_obj *tree = pdf_load_name_tree(ctx, pdf, pdf_new_name(ctx, "Dests"));
	if (tree != NULL) {
		pdf_sort_dict(ctx, tree);
	}
	return tree;
}

// pt_named_dest_uri returns "#page=..." for a "#nameddest=..." URI found
// in dests, to free with fz_free, or NULL. May throw.
static char *pt_named_dest_uri(fz_context *ctx, fz_document *doc, pdf_obj *dests, const char *uri) {
	if (dests == NULL || strncmp(uri, pt_nameddest, sizeof pt_nameddest - 1) != 0) {
		return NULL;
	}
	char *name = fz_decode_uri_component(ctx, uri + sizeof pt_nameddest - 1);
	pdf_obj *dest = pdf_dict_gets(ctx, dests, name);
	fz_free(ctx, name);
	if (pdf_is_dict(ctx, dest)) {
		dest = pdf_dict_gets(ctx, dest, "D");
	}
	if (dest == NULL) {
		return NULL;
	}
	return pdf_parse_link_dest(ctx, pdf_document_from_fz_document(ctx, doc), dest);
}

void pt_resolve_links(fz_context *ctx, fz_document *doc, int n, const char **uris, int *pages, float *ys, size_t trim_budget) {
	pdf_obj *volatile dests = NULL;
	size_t trimmed_at = pt_live_bytes(ctx);
	int named = 0;
	for (int i = 0; i < n; i++) {
		pages[i] = -1;
		ys[i] = 0;
		named |= uris[i] != NULL && strncmp(uris[i], pt_nameddest, sizeof pt_nameddest - 1) == 0;
	}
	if (named) {
		PT_TRY(ctx) {
			dests = pt_load_dests(ctx, doc);
		}
		PT_CATCH(ctx) {
			dests = NULL; // MuPDF's own lookup, name by name
		}
	}
	for (int i = 0; i < n; i++) {
		const char *uri = uris[i];
		char *volatile explicit_uri = NULL;
		if (uri == NULL || uri[0] == 0) {
			continue;
		}
		PT_TRY(ctx) {
			if (!fz_is_external_link(ctx, uri)) {
				float x = 0;
				explicit_uri = pt_named_dest_uri(ctx, doc, dests, uri);
				fz_location loc = fz_resolve_link(ctx, doc, explicit_uri != NULL ? explicit_uri : uri, &x, &ys[i]);
				pages[i] = loc.chapter == 0 ? loc.page : -1;
			}
		}
		PT_CATCH(ctx) {
			pages[i] = -1;
		}
		fz_free(ctx, explicit_uri);
		// The dictionary keeps the destinations; whatever else was
		// parsed on the way can go.
		if (pt_live_bytes(ctx) > trimmed_at + trim_budget) {
			pt_trim(ctx, doc, 0);
			trimmed_at = pt_live_bytes(ctx);
		}
	}
	PT_TRY(ctx) {
		pdf_drop_obj(ctx, dests);
	}
	PT_CATCH(ctx) {
	}
}

int pt_set_malloc_arenas(int n) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	return mallopt(M_ARENA_MAX, n);
#else
	(void)n;
	return 0;
#endif
}

// pt_check_fill takes n blocks of size bytes from m, every step-th of
// blocks from the first, and fills them with c.
static void pt_check_fill(pt_mem *m, void **blocks, int n, int step, size_t size, int c) {
	for (int i = 0; i < n; i += step) {
		blocks[i] = pt_malloc(m, size);
		memset(blocks[i], c, size);
	}
}

// pt_check_free frees every step-th of n blocks from the first.
static void pt_check_free(pt_mem *m, void **blocks, int n, int step) {
	for (int i = 0; i < n; i += step) {
		pt_free(m, blocks[i]);
	}
}

// pt_check_no_new_span takes n blocks of size bytes into blocks and frees
// them again; it reports whether m took no new span from its range for
// them.
static int pt_check_no_new_span(pt_mem *m, void **blocks, int n, size_t size, int c) {
	uint32_t spans = m->spans;
	pt_check_fill(m, blocks, n, 1, size, c);
	int ok = m->spans == spans;
	pt_check_free(m, blocks, n, 1);
	return ok;
}

// pt_pool_check exercises a pool of region_size bytes the way MuPDF uses
// one (every size class, malloc'd blocks, reallocation between them, free
// lists, a full range) and returns NULL or what went wrong.
const char *pt_pool_check(size_t region_size) {
	static const size_t sizes[] = {1, 16, 17, 24, 100, 128, 129, 160, 161, 1000, 4096, 32767, 32768, 32769, 1 << 20};
	enum { nsizes = sizeof sizes / sizeof sizes[0], fill_size = 16 << 10 };
	const char *bad = NULL;
	void *blocks[nsizes] = {0};
	// Ranges of up to 1 MiB are filled up, and a few blocks more asked for.
	size_t nfill = region_size <= (1 << 20) ? region_size / fill_size + 8 : 8;
	void **fill = calloc(nfill, sizeof *fill);
	pt_mem *m = fill != NULL ? pt_new_mem(region_size) : NULL;
	if (m == NULL || m->region == NULL) {
		bad = "cannot reserve a range";
		goto out;
	}
	size_t want = 0;
	for (int i = 0; i < nsizes; i++) {
		blocks[i] = pt_malloc(m, sizes[i]);
		if (blocks[i] == NULL || ((uintptr_t)blocks[i] & 15) != 0) {
			bad = "malloc: NULL or not 16-byte aligned";
			goto out;
		}
		memset(blocks[i], 'a' + i, sizes[i]);
		// Pooled blocks count their class's size, others what was asked.
		int c = pt_pooled_class(m, blocks[i]);
		want += c >= 0 ? pt_class_size(c) : sizes[i];
		if (c >= 0 && c != pt_class(sizes[i])) {
			bad = "block in a span of another class";
			goto out;
		}
		if (sizes[i] <= pt_max_small && pt_class_size(pt_class(sizes[i])) < sizes[i]) {
			bad = "size class smaller than the request";
			goto out;
		}
	}
	if (m->live != want) {
		bad = "live bytes do not add up after malloc";
		goto out;
	}
	for (int i = 0; i < nsizes; i++) {
		for (size_t k = 0; k < sizes[i]; k++) {
			if (((unsigned char *)blocks[i])[k] != 'a' + i) {
				bad = "blocks overlap";
				goto out;
			}
		}
	}
	// Freed blocks are reused first.
	void *was = blocks[2];
	int was_pooled = pt_pooled_class(m, was) >= 0;
	pt_free(m, blocks[2]);
	blocks[2] = pt_malloc(m, 20);
	if (was_pooled && blocks[2] != was) {
		bad = "a freed block is not reused for its class";
		goto out;
	}
	memset(blocks[2], 'c', 17);
	// Reallocation keeps the contents: within a class, to a larger class,
	// to a malloc'd block, back to a small one, and between large ones.
	static const size_t steps[] = {18, 300, 40000, 50, 1 << 21, 3 << 20, 10};
	size_t have = 17;
	for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
		void *old = blocks[2];
		int pooled = pt_pooled_class(m, old) >= 0;
		void *q = pt_realloc(m, old, steps[k]);
		if (q == NULL) {
			bad = "realloc failed";
			goto out;
		}
		blocks[2] = q;
		if (steps[k] == 18 && pooled && q != old) {
			bad = "realloc within a class moved the block";
			goto out;
		}
		size_t keep = have < steps[k] ? have : steps[k];
		for (size_t j = 0; j < keep; j++) {
			if (((unsigned char *)q)[j] != 'c') {
				bad = "realloc lost the contents";
				goto out;
			}
		}
		memset(q, 'c', steps[k]);
		have = steps[k];
	}
	// Spans with no block in use are given back (but for a reserve), the
	// others keep their blocks, and the empty ones are reused.
	if (region_size >= (4 << 20)) {
		enum { nrel = 4 * 40 };
		void *rel[nrel];
		size_t pooled0 = m->pooled;
		pt_check_fill(m, rel, nrel, 1, 16 << 10, 'r');
		uint32_t spans1 = m->spans;
		// Blocks freed in spans that are not the current one are used
		// again before any new span.
		pt_check_free(m, rel, nrel, 2);
		pt_check_fill(m, rel, nrel, 2, 16 << 10, 'r');
		if (m->spans != spans1) {
			bad = "freed blocks of other spans not reused";
			goto out;
		}
		// One block stays in use in a span that is not the current one.
		for (int i = 0; i < nrel; i++) {
			if (i != 5) {
				pt_free(m, rel[i]);
			}
		}
		pt_release(m, 1);
		if (m->pooled > pooled0 + (2 + pt_reserve_spans) * pt_span_size) {
			bad = "empty spans not given back";
			goto out;
		}
		for (size_t k = 0; k < (16 << 10); k++) {
			if (((unsigned char *)rel[5])[k] != 'r') {
				bad = "a block in use was given back with its span";
				goto out;
			}
		}
		pt_free(m, rel[5]);
		for (int i = 0; i < nsizes; i++) {
			size_t len = i == 2 ? have : sizes[i];
			for (size_t k = 0; k < len; k++) {
				if (((unsigned char *)blocks[i])[k] != (i == 2 ? 'c' : 'a' + i)) {
					bad = "a block in use changed when empty spans were given back";
					goto out;
				}
			}
		}
		if (!pt_check_no_new_span(m, rel, nrel, 16 << 10, 's')) {
			bad = "empty spans not reused";
			goto out;
		}
		// A trim that gives nothing back moves the emptied spans to the
		// idle list, still counted as pooled, and another class takes
		// them from there rather than new ones.
		size_t pooled1 = m->pooled;
		pt_release(m, 0);
		if (m->pooled != pooled1) {
			bad = "a release without giving back changed the pooled bytes";
			goto out;
		}
		if (!pt_check_no_new_span(m, rel, nrel, 8 << 10, 't')) {
			bad = "idle spans not taken by another class";
			goto out;
		}
	}
	// Past the end of the range, blocks come from malloc.
	for (size_t i = 0; i < nfill; i++) {
		fill[i] = pt_malloc(m, fill_size);
		if (fill[i] == NULL) {
			bad = "malloc failed past the end of the range";
			goto out;
		}
		memset(fill[i], 'f', fill_size);
	}
	if (region_size <= (1 << 20) && pt_pooled_class(m, fill[nfill - 1]) >= 0) {
		bad = "a full range still hands out blocks";
		goto out;
	}
	if (m->pooled > m->region_size) {
		bad = "more spans handed out than the range holds";
		goto out;
	}
out:
	if (m != NULL) {
		for (int i = 0; i < nsizes; i++) {
			pt_free(m, blocks[i]);
		}
		for (size_t i = 0; i < nfill; i++) {
			pt_free(m, fill[i]);
		}
		if (bad == NULL && m->live != 0) {
			bad = "live bytes not zero after freeing everything";
		}
		pt_drop_mem(m);
	}
	free(fill);
	return bad;
}

//go:build cgo && !nomupdf

#include "mupdf_shim.h"
#include "pt_mem.h"

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
int fz_caught(fz_context *ctx);
enum { FZ_ERROR_SYSTEM = 2 }; // out of memory or a failed system call
void fz_clear_buffer(fz_context *ctx, fz_buffer *buf);
void fz_append_rune(fz_context *ctx, fz_buffer *buf, int c);
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
pdf_obj *pdf_trailer(fz_context *ctx, pdf_document *doc);
pdf_obj *pdf_dict_getp(fz_context *ctx, pdf_obj *dict, const char *path);
void pdf_dict_puts(fz_context *ctx, pdf_obj *dict, const char *key, pdf_obj *val);
void pdf_dict_puts_drop(fz_context *ctx, pdf_obj *dict, const char *key, pdf_obj *val);
void pdf_dict_dels(fz_context *ctx, pdf_obj *dict, const char *key);
pdf_obj *pdf_new_int(fz_context *ctx, int64_t i);
pdf_obj *pdf_keep_obj(fz_context *ctx, pdf_obj *obj);
pdf_obj *pdf_resolve_indirect(fz_context *ctx, pdf_obj *ref);
void pdf_set_obj_parent(fz_context *ctx, pdf_obj *obj, int num);
int pdf_obj_parent_num(fz_context *ctx, pdf_obj *obj);
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

static pt_mem *pt_mem_of(fz_context *ctx) { return ctx != NULL ? fz_user_context(ctx) : NULL; }

// pt_out_of_memory reports whether the error just caught is MuPDF's
// out-of-memory error after the context's allocator refused memory since
// it counted failures0.
static int pt_out_of_memory(fz_context *ctx, size_t failures0) {
	return fz_caught(ctx) == FZ_ERROR_SYSTEM && pt_mem_failures(pt_mem_of(ctx)) > failures0;
}


size_t pt_pooled_bytes(fz_context *ctx) {
	pt_mem *m = pt_mem_of(ctx);
	return m != NULL ? pt_mem_pooled(m) : 0;
}

size_t pt_live_bytes(fz_context *ctx) {
	pt_mem *m = pt_mem_of(ctx);
	return m != NULL ? pt_mem_live(m) : 0;
}

void pt_set_memory_limit(fz_context *ctx, size_t limit) {
	pt_mem *m = pt_mem_of(ctx);
	if (m != NULL) {
		pt_mem_set_limit(m, limit);
	}
}

const char *pt_allocator(void) { return pt_mem_kind(); }

// pt_new_context makes a context that allocates through a pt_mem of its
// own, which counts its memory (released by pt_drop_context).
static fz_context *pt_new_context(size_t max_store) {
	pt_mem *m = pt_mem_new();
	if (m == NULL) {
		return NULL;
	}
	fz_alloc_context alloc = {m, pt_mem_malloc, pt_mem_realloc, pt_mem_free};
	fz_context *ctx = fz_new_context_imp(&alloc, NULL, max_store, PT_FZ_VERSION);
	if (ctx == NULL) {
		pt_mem_drop(m);
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
	pt_mem_drop(m);
}

// pt_lazy_tree_try makes MuPDF's first page lookup fail to build its map
// of every page, so that MuPDF marks the page tree broken and from then on
// finds each page by walking the tree (see pt_open in the header): with
// the root's /Count at -1, pdf_count_pages throws inside the map's
// construction. May throw.
static void pt_lazy_tree_try(fz_context *ctx, pdf_document *pdf, pdf_obj *pages) {
	pdf_dict_puts_drop(ctx, pages, "Count", pdf_new_int(ctx, -1));
	pdf_lookup_page_obj(ctx, pdf, 0);
}

// pt_lazy_tree applies pt_lazy_tree_try to doc through MuPDF's public
// API, and puts the page tree's root back as it was whatever happened.
// While /Count is changed, the root is detached from its object number
// (pdf_set_obj_parent 0, as while MuPDF parses an object): otherwise the
// edit makes MuPDF start an incremental xref section, 40 bytes for every
// object of the file. Any error leaves MuPDF to build its map as usual.
static void pt_lazy_tree(fz_context *ctx, fz_document *doc) {
	pdf_obj *volatile pages = NULL;
	pdf_obj *volatile count = NULL;
	volatile int num = 0;
	PT_TRY(ctx) {
		pdf_document *pdf = pdf_document_from_fz_document(ctx, doc);
		pdf_obj *p = pdf != NULL ? pdf_resolve_indirect(ctx, pdf_dict_getp(ctx, pdf_trailer(ctx, pdf), "Root/Pages")) : NULL;
		if (pdf_is_dict(ctx, p)) {
			count = pdf_keep_obj(ctx, pdf_dict_gets(ctx, p, "Count"));
			num = pdf_obj_parent_num(ctx, p);
			pages = pdf_keep_obj(ctx, p);
			pdf_set_obj_parent(ctx, p, 0);
			pt_lazy_tree_try(ctx, pdf, p);
		}
	}
	PT_CATCH(ctx) {
	}
	if (pages == NULL) {
		pdf_drop_obj(ctx, count);
		return;
	}
	PT_TRY(ctx) {
		if (count != NULL) {
			pdf_dict_puts(ctx, pages, "Count", count);
		} else {
			pdf_dict_dels(ctx, pages, "Count");
		}
	}
	PT_CATCH(ctx) {
	}
	// None of these throws.
	pdf_set_obj_parent(ctx, pages, num);
	pdf_drop_obj(ctx, count);
	pdf_drop_obj(ctx, pages);
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
	PT_TRY(ctx) {
		fz_drop_stream(ctx, stm); // the document holds its own reference
	}
	PT_CATCH(ctx) {
	}
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
	if (!full_page_tree) {
		pt_lazy_tree(ctx, doc);
	}
	*pctx = ctx;
	*pdoc = doc;
	*pages = n;
	return PT_OK;
}

fz_buffer *pt_page_text(fz_context *ctx, fz_document *doc, int n, int *oom, char *errbuf, int errlen) {
	fz_buffer *volatile buf = NULL;
	const size_t failures0 = pt_mem_failures(pt_mem_of(ctx));
	*oom = 0;
	PT_TRY(ctx) {
		buf = fz_new_buffer_from_page_number(ctx, doc, n, NULL);
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		*oom = pt_out_of_memory(ctx, failures0);
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
// and so are the lines and blocks left empty by that. line is scratch
// space for a line's UTF-8.
static void pt_serialise(fz_context *ctx, fz_stext_page *page, fz_buffer *out, fz_buffer *line_text) {
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
			fz_clear_buffer(ctx, line_text);
			for (fz_stext_char *ch = line->first_char; ch; ch = ch->next) {
				if (pt_outside(&ch->quad, media)) {
					clipped = 1;
					continue;
				}
				kept++;
				pt_union_quad(&bbox, &ch->quad);
				fz_append_rune(ctx, line_text, ch->c);
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
			unsigned char *text;
			size_t len = fz_buffer_storage(ctx, line_text, &text);
			unsigned int n = (unsigned int)len;
			rec[0] = PT_REC_LINE;
			memcpy(rec + 1, f, sizeof f);
			rec[1 + sizeof f] = (visible > 0 && 2 * bold > visible) ? PT_LINE_BOLD : 0;
			memcpy(rec + 2 + sizeof f, &n, 4);
			fz_append_data(ctx, out, rec, sizeof rec);
			fz_append_data(ctx, out, text, len);
		}
	}
}

fz_buffer *pt_page_layout(fz_context *ctx, fz_document *doc, int n, int stext_flags, fz_cookie *cookie,
	int *aborted, int *oom, char *errbuf, int errlen) {
	// Everything set inside the try and read after it is volatile: after
	// MuPDF's longjmp other locals have indeterminate values.
	fz_page *volatile page = NULL;
	fz_stext_page *volatile stext = NULL;
	fz_device *volatile dev = NULL;
	fz_buffer *volatile out = NULL;
	fz_buffer *volatile line_text = NULL;
	volatile int failed = 0;
	const size_t failures0 = pt_mem_failures(pt_mem_of(ctx));
	fz_stext_options opts = {stext_flags, 1};

	*aborted = 0;
	*oom = 0;
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
			line_text = fz_new_buffer(ctx, 256);
			unsigned char tag = PT_REC_PAGE;
			fz_append_data(ctx, out, &tag, 1);
			pt_put_rect(ctx, out, bounds);
			pt_serialise(ctx, stext, out, line_text);
		}
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		// A page cut short by a refused allocation is not a whole page:
		// the caller skips it.
		*oom = pt_out_of_memory(ctx, failures0);
		failed = 1;
	}
	if (cookie != NULL && cookie->abort) {
		*aborted = 1;
	}
	PT_TRY(ctx) {
		fz_drop_buffer(ctx, line_text);
		fz_drop_device(ctx, dev);
		fz_drop_stext_page(ctx, stext);
		fz_drop_page(ctx, page);
	}
	PT_CATCH(ctx) {
	}
	if ((failed || *aborted) && out != NULL) {
		pt_drop_buffer(ctx, out);
		out = NULL;
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
	pt_mem_release(pt_mem_of(ctx), give_back);
#if defined(__GLIBC__)
	// Give the freed pages back to the system too, or the resident size
	// keeps the high-water mark of every object stream ever parsed.
	malloc_trim(0);
#endif
}

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
	// The walk's state changes inside the try; what is read after it is
	// copied to volatile locals (the writer w is not read after a throw).
	pt_outline_walk w = {doc, NULL, NULL, 0, max_items, max_depth};
	fz_outline_iterator *volatile iter = NULL;
	fz_buffer *volatile out = NULL;
	volatile int items = 0;
	*failed = 0;
	PT_TRY(ctx) {
		iter = fz_new_outline_iterator(ctx, doc);
		out = fz_new_buffer(ctx, 1024);
		w.iter = iter;
		w.out = out;
		if (iter != NULL) {
			pt_walk_level(ctx, &w, 1);
		}
		items = w.items;
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		*failed = 1;
	}
	PT_TRY(ctx) {
		fz_drop_outline_iterator(ctx, iter);
		if (*failed || items == 0) {
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

// pt_try_load_dests is pt_load_dests, or NULL on error (then MuPDF's own
// lookup is used, name by name).
static pdf_obj *pt_try_load_dests(fz_context *ctx, fz_document *doc) {
	pdf_obj *volatile dests = NULL;
	PT_TRY(ctx) {
		dests = pt_load_dests(ctx, doc);
	}
	PT_CATCH(ctx) {
		dests = NULL;
	}
	return dests;
}

// pt_resolve_link resolves one internal link URI to a page index (-1
// when external, unknown or broken) and sets *y.
static int pt_resolve_link(fz_context *ctx, fz_document *doc, pdf_obj *dests, const char *uri, float *y) {
	char *volatile explicit_uri = NULL;
	volatile int page = -1;
	PT_TRY(ctx) {
		if (!fz_is_external_link(ctx, uri)) {
			float x = 0;
			explicit_uri = pt_named_dest_uri(ctx, doc, dests, uri);
			fz_location loc = fz_resolve_link(ctx, doc, explicit_uri != NULL ? explicit_uri : uri, &x, y);
			page = loc.chapter == 0 ? loc.page : -1;
		}
	}
	PT_CATCH(ctx) {
		page = -1;
	}
	fz_free(ctx, explicit_uri); // never throws
	return page;
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
		dests = pt_try_load_dests(ctx, doc);
	}
	for (int i = 0; i < n; i++) {
		if (uris[i] == NULL || uris[i][0] == 0) {
			continue;
		}
		pages[i] = pt_resolve_link(ctx, doc, dests, uris[i], &ys[i]);
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

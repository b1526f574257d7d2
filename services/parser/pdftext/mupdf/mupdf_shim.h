// A minimal C shim over the MuPDF 1.24.9 library bundled (statically) by
// github.com/gen2brain/go-fitz. Every MuPDF call runs inside fz_try: an
// uncaught MuPDF exception would otherwise print "aborting process from
// uncaught error!" and exit the whole process, which go-fitz's own API
// allows for fz_count_pages, fz_load_outline, fz_bound_page and others.
//
// go-fitz does not export MuPDF's headers to other packages, so the few
// declarations needed are repeated here; they must match the bundled
// version (checked at run time by fz_new_context_imp and PT_FZ_VERSION).

#ifndef PDFTEXT_MUPDF_SHIM_H
#define PDFTEXT_MUPDF_SHIM_H

#include <stddef.h>

#define PT_FZ_VERSION "1.24.9"

typedef struct fz_context fz_context;
typedef struct fz_document fz_document;
typedef struct fz_buffer fz_buffer;

// fz_cookie as in mupdf/fitz/device.h: setting abort from another thread
// makes MuPDF stop interpreting the page.
typedef struct {
	int abort;
	int progress;
	size_t progress_max;
	int errors;
	int incomplete;
} fz_cookie;

typedef struct {
	int chapter;
	int page;
} fz_location;


enum {
	PT_OK = 0,
	PT_ERR_CONTEXT = 1,  // cannot create a context (memory, version)
	PT_ERR_OPEN = 2,     // MuPDF cannot open the file as a PDF
	PT_ERR_PASSWORD = 3, // a password is needed and none or a wrong one was given
	PT_ERR_PAGES = 4,    // the page count cannot be read
};

// pt_open opens filename with MuPDF's PDF handler, authenticates with
// password if needed and counts the pages. On PT_OK *ctx and *doc must be
// released with pt_close; on error nothing is left to release. errbuf
// receives MuPDF's message. The context counts the bytes MuPDF holds
// (pt_live_bytes).
//
// Unless full_page_tree is set, pages are found by walking the page tree
// down to each one instead of through MuPDF's map of every page. Before
// it loads the first page of a document, MuPDF 1.24 builds a map of every
// page, which parses every object stream that holds a page or page-tree
// node (for a 2,415-page manual: 56,000 objects, +31 MiB and 0.1 s, again
// for each worker's copy). When that map cannot be built MuPDF marks the
// tree broken and walks it for each page, which touches only the nodes on
// the way. pt_open gets there through MuPDF's public API only, without
// writing into MuPDF's structures: it sets the root's /Count to -1 (so
// building the map fails at once), looks up the first page, and puts
// /Count back (see pt_lazy_tree). Should a later MuPDF build the map
// anyway, the result is what it is without this step.
int pt_open(const char *filename, const char *password, size_t max_store, int full_page_tree,
	fz_context **ctx, fz_document **doc, int *pages, char *errbuf, int errlen);

// pt_live_bytes is the memory MuPDF holds for ctx: the sizes of the
// blocks it has allocated and not freed.
size_t pt_live_bytes(fz_context *ctx);

// pt_pooled_bytes is the size of ctx's pool of small blocks, in use or
// free, less what pt_trim gave back (see pt_pool.c); 0 with plain malloc.
size_t pt_pooled_bytes(fz_context *ctx);

// pt_set_memory_limit makes ctx's allocations fail once MuPDF would hold
// more than limit bytes (0: no limit).
void pt_set_memory_limit(fz_context *ctx, size_t limit);

// pt_allocator names the allocator of this build: "malloc" (the default)
// or "pool" (-tags mupdfpool, see pt_mem.h).
const char *pt_allocator(void);

// pt_page_text returns page n's text (lines separated by '\n', blocks
// followed by an empty line) in a buffer to free with pt_drop_buffer, or
// NULL with errbuf set, and *oom set when MuPDF ran out of memory.
fz_buffer *pt_page_text(fz_context *ctx, fz_document *doc, int n, int *oom, char *errbuf, int errlen);

// Record tags of pt_page_layout's output.
enum {
	PT_REC_PAGE = 'P',  // float x0, y0, x1, y1: the page's bounds
	PT_REC_BLOCK = 'B', // float x0, y0, x1, y1
	PT_REC_LINE = 'L',  // float x0, y0, x1, y1, size; uint8 flags; uint32 n; n bytes of UTF-8
};

// Line flags.
enum {
	PT_LINE_BOLD = 1,
};

// pt_page_layout extracts page n as structured text (stext_flags are
// MuPDF's FZ_STEXT_* options) and serialises its text blocks and lines into
// a buffer to free with pt_drop_buffer: first a PT_REC_PAGE record (the
// page's bounds, which place running headers and footers), then per block a PT_REC_BLOCK record,
// then a PT_REC_LINE record per line, in native byte order. A line's size
// is the font size of most of its characters, bold is set when most of its
// non-space characters are in a bold font. cookie (may be NULL) lets
// another thread abort the page: *aborted is then set. Returns NULL with
// errbuf set on error, and *oom set when the error is that MuPDF ran out
// of memory (an allocation was refused): the page is then not whole.
fz_buffer *pt_page_layout(fz_context *ctx, fz_document *doc, int n, int stext_flags, fz_cookie *cookie,
	int *aborted, int *oom, char *errbuf, int errlen);

// pt_outline_records walks the outline with MuPDF's outline iterator
// and writes per entry: int level (1-based), uint32 n, n bytes of title,
// uint32 m, m bytes of link URI (empty when none); at most max_items
// entries, no deeper than max_depth. Targets are not resolved here (see
// pt_resolve_links). Returns NULL with *failed == 0 when there is no
// outline, NULL with *failed and errbuf set on error.
fz_buffer *pt_outline_records(fz_context *ctx, fz_document *doc, int max_items, int max_depth,
	int *failed, char *errbuf, int errlen);


// pt_resolve_links resolves n internal link URIs (as pt_outline_records
// gives them) to page indexes (-1 when external, unknown or broken) and
// y positions. Named destinations are looked up in the document's
// destination name tree, read once into a sorted dictionary: MuPDF's own
// lookup walks the tree from the top for each name (80 µs per name in a
// manual with 18,000 of them). Parsed objects are trimmed whenever MuPDF's
// memory grows by trim_budget.
void pt_resolve_links(fz_context *ctx, fz_document *doc, int n, const char **uris, int *pages, float *ys, size_t trim_budget);

// pt_trim lets MuPDF forget the PDF objects it has parsed and nothing
// else refers to (pdf_clear_xref), so memory does not grow with the
// number of pages read, and returns free memory to the system (glibc).
// With give_back set, the pages of the context's pool that no longer hold
// anything go back to the system too (see pt_release in pt_pool.c).
void pt_trim(fz_context *ctx, fz_document *doc, int give_back);

// pt_buffer_data exposes a buffer's bytes.
size_t pt_buffer_data(fz_context *ctx, fz_buffer *buf, unsigned char **data);
void pt_drop_buffer(fz_context *ctx, fz_buffer *buf);


// pt_set_malloc_arenas caps the number of glibc malloc arenas (MuPDF
// allocates with malloc from whichever OS thread Go runs a cgo call on;
// each new thread may get an arena of its own). Returns 1 when applied,
// 0 when the C library has no such setting.
int pt_set_malloc_arenas(int n);

// pt_close releases a document and its context.
void pt_close(fz_context *ctx, fz_document *doc);

#endif

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

typedef struct {
	int chapter;
	int page;
} fz_location;

typedef struct fz_outline {
	int refs;
	char *title;
	char *uri;
	fz_location page;
	float x, y;
	struct fz_outline *next;
	struct fz_outline *down;
	int is_open;
} fz_outline;

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
// receives MuPDF's message.
int pt_open(const char *filename, const char *password, size_t max_store,
	fz_context **ctx, fz_document **doc, int *pages, char *errbuf, int errlen);

// pt_page_text returns page n's text (lines separated by '\n', blocks
// followed by an empty line) in a buffer to free with pt_drop_buffer, or
// NULL with errbuf set.
fz_buffer *pt_page_text(fz_context *ctx, fz_document *doc, int n, char *errbuf, int errlen);

// pt_buffer_data exposes a buffer's bytes.
size_t pt_buffer_data(fz_context *ctx, fz_buffer *buf, unsigned char **data);
void pt_drop_buffer(fz_context *ctx, fz_buffer *buf);

// pt_load_outline returns the outline tree (NULL when there is none) and
// sets *failed (with errbuf) when it cannot be read.
fz_outline *pt_load_outline(fz_context *ctx, fz_document *doc, int *failed, char *errbuf, int errlen);
void pt_drop_outline(fz_context *ctx, fz_outline *outline);

// pt_close releases a document and its context.
void pt_close(fz_context *ctx, fz_document *doc);

#endif

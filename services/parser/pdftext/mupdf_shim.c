//go:build cgo

#include "mupdf_shim.h"

#include <setjmp.h>
#include <stdio.h>

typedef struct fz_alloc_context fz_alloc_context;
typedef struct fz_locks_context fz_locks_context;
typedef struct fz_stream fz_stream;
typedef void(fz_error_cb)(void *user, const char *message);

// MuPDF 1.24.9 API, see include/mupdf/fitz in go-fitz.
fz_context *fz_new_context_imp(const fz_alloc_context *alloc, const fz_locks_context *locks, size_t max_store, const char *version);
void fz_drop_context(fz_context *ctx);
void fz_set_error_callback(fz_context *ctx, fz_error_cb *cb, void *user);
void fz_set_warning_callback(fz_context *ctx, fz_error_cb *cb, void *user);
void fz_register_document_handlers(fz_context *ctx);
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
fz_outline *fz_load_outline(fz_context *ctx, fz_document *doc);
void fz_drop_outline(fz_context *ctx, fz_outline *outline);
const char *fz_caught_message(fz_context *ctx);

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

static void pt_caught(fz_context *ctx, char *errbuf, int errlen) {
	if (errlen > 0) {
		snprintf(errbuf, (size_t)errlen, "%s", fz_caught_message(ctx));
	}
}

int pt_open(const char *filename, const char *password, size_t max_store,
	fz_context **pctx, fz_document **pdoc, int *pages, char *errbuf, int errlen) {
	fz_context *ctx;
	fz_stream *volatile stm = NULL;
	fz_document *volatile doc = NULL;
	volatile int rc = PT_OK;
	volatile int n = 0;

	*pctx = NULL;
	*pdoc = NULL;
	*pages = 0;
	ctx = fz_new_context_imp(NULL, NULL, max_store, PT_FZ_VERSION);
	if (ctx == NULL) {
		snprintf(errbuf, (size_t)errlen, "cannot create mupdf context (library version is not %s?)", PT_FZ_VERSION);
		return PT_ERR_CONTEXT;
	}
	fz_set_error_callback(ctx, pt_quiet, NULL);
	fz_set_warning_callback(ctx, pt_quiet, NULL);

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

fz_outline *pt_load_outline(fz_context *ctx, fz_document *doc, int *failed, char *errbuf, int errlen) {
	fz_outline *volatile outline = NULL;
	*failed = 0;
	PT_TRY(ctx) {
		outline = fz_load_outline(ctx, doc);
	}
	PT_CATCH(ctx) {
		pt_caught(ctx, errbuf, errlen);
		*failed = 1;
		return NULL;
	}
	return outline;
}

void pt_drop_outline(fz_context *ctx, fz_outline *outline) {
	PT_TRY(ctx) {
		fz_drop_outline(ctx, outline);
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
	fz_drop_context(ctx);
}

// The driver of the shim's sanitizer build (scripts/sanitize.sh): it reads
// each PDF named on the command line the way pdftext does: open, outline
// and its targets, every page's layout with trims between pages. It
// prints one line per file, and a sanitizer report ends the process on
// the first fault.
//
// With -mutate, it reads instead mutants of the files: for k from -from
// to -to, mutant k of file k % nfiles is the file with a few random
// edits (PDF tokens put in, bytes flipped, runs dropped or repeated, the
// tail cut), chosen by k alone, so a fault is found again by its k. Each
// mutant is written to the -out file before it is read.
//
// Usage: driver [-pages N] file.pdf...
//        driver [-pages N] -mutate -from K0 -to K1 -out mutant.pdf file.pdf...

#include "../../mupdf_shim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run(const char *path, int max_pages) {
	fz_context *ctx;
	fz_document *doc;
	int pages = 0;
	char err[256] = "";
	int rc = pt_open(path, "", 64 << 20, 0, &ctx, &doc, &pages, err, sizeof err);
	if (rc != PT_OK) {
		printf("%s: open: %d %s\n", path, rc, err);
		return;
	}
	int failed = 0;
	fz_buffer *outline = pt_outline_records(ctx, doc, 200000, 32, &failed, err, sizeof err);
	int links = 0;
	if (outline != NULL) {
		// Walk the records as mupdf.go does, and resolve the URIs.
		unsigned char *b;
		size_t n = pt_buffer_data(ctx, outline, &b);
		const char **uris = NULL;
		char **owned = NULL;
		while (n >= 8) {
			unsigned int tl, ul;
			memcpy(&tl, b + 4, 4);
			if (n < 12 + (size_t)tl) break;
			memcpy(&ul, b + 8 + tl, 4);
			if (n < 12 + (size_t)tl + ul) break;
			char *u = malloc((size_t)ul + 1);
			memcpy(u, b + 12 + tl, ul);
			u[ul] = 0;
			uris = realloc(uris, (size_t)(links + 1) * sizeof *uris);
			owned = realloc(owned, (size_t)(links + 1) * sizeof *owned);
			uris[links] = owned[links] = u;
			links++;
			b += 12 + tl + ul;
			n -= 12 + (size_t)tl + ul;
		}
		if (links > 0) {
			int *pg = malloc((size_t)links * sizeof *pg);
			float *ys = malloc((size_t)links * sizeof *ys);
			pt_resolve_links(ctx, doc, links, uris, pg, ys, 4 << 20);
			free(pg);
			free(ys);
		}
		for (int i = 0; i < links; i++) free(owned[i]);
		free(owned);
		free(uris);
		pt_drop_buffer(ctx, outline);
		pt_trim(ctx, doc, 1);
	}
	int ok = 0, bad = 0, oom = 0;
	size_t bytes = 0;
	for (int i = 0; i < pages && i < max_pages; i++) {
		int aborted = 0, out_of_memory = 0;
		fz_buffer *buf = pt_page_layout(ctx, doc, i, 0, NULL, &aborted, &out_of_memory, err, sizeof err);
		if (buf == NULL) {
			bad++;
			oom += out_of_memory;
		} else {
			unsigned char *d;
			bytes += pt_buffer_data(ctx, buf, &d);
			pt_drop_buffer(ctx, buf);
			ok++;
		}
		if (pt_live_bytes(ctx) > (2 << 20)) {
			pt_trim(ctx, doc, 0);
		}
	}
	printf("%s: pages %d, read %d, failed %d (out of memory %d), outline links %d, %zu bytes\n", path, pages, ok, bad, oom, links, bytes);
	pt_close(ctx, doc);
}

// splitmix64: the mutations depend on k only.
static uint64_t next_rand(uint64_t *s) {
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static const char *tokens[] = {
	"0", "-1", "2147483647", "-2147483648", "99999999999", "1e308", "0 0 R", "1 0 R", "3 0 R",
	"<<", ">>", "[", "]", "(", ")", "<", ">", "/", "/Type", "/Pages", "/Page", "/Kids", "/Count",
	"/Parent", "/Contents", "/Resources", "/Font", "/Length", "/Filter", "/FlateDecode", "/Outlines",
	"/First", "/Next", "/Dest", "/Names", "/ObjStm", "/XRef", "stream\n", "\nendstream", "obj", "endobj",
	"xref", "trailer", "startxref", "Tj", "TJ", "Tf", "BT", "ET", "Td", "'", "q", "Q", "cm", "Do",
	"/W [1 2 1]", "/Index [0 1]", "%%EOF", "\x00", "\xff\xfe", "\\", "1 0 obj << /Length 999999 >> stream\n",
};

// mutate makes mutant k of in (n bytes) into out (capacity cap), returns
// its length.
static size_t mutate(uint64_t k, const unsigned char *in, size_t n, unsigned char *out, size_t cap) {
	uint64_t rs = k * 0x2545F4914F6CDD1Dull + 1;
	size_t len = n < cap ? n : cap;
	memcpy(out, in, len);
	int edits = 1 + (int)(next_rand(&rs) % 8);
	for (int e = 0; e < edits && len > 0; e++) {
		size_t at = (size_t)(next_rand(&rs) % len);
		switch (next_rand(&rs) % 6) {
		case 0: // flip a byte
			out[at] ^= (unsigned char)(1 + next_rand(&rs) % 255);
			break;
		case 1: { // put a token in, over the bytes there
			const char *t = tokens[next_rand(&rs) % (sizeof tokens / sizeof tokens[0])];
			size_t tl = strlen(t);
			if (at + tl <= len) memcpy(out + at, t, tl);
			break;
		}
		case 2: { // insert a token
			const char *t = tokens[next_rand(&rs) % (sizeof tokens / sizeof tokens[0])];
			size_t tl = strlen(t);
			if (len + tl <= cap) {
				memmove(out + at + tl, out + at, len - at);
				memcpy(out + at, t, tl);
				len += tl;
			}
			break;
		}
		case 3: { // drop a run
			size_t rl = 1 + (size_t)(next_rand(&rs) % 64);
			if (at + rl > len) rl = len - at;
			memmove(out + at, out + at + rl, len - at - rl);
			len -= rl;
			break;
		}
		case 4: { // repeat a run
			size_t rl = 1 + (size_t)(next_rand(&rs) % 256);
			if (at + rl > len) rl = len - at;
			if (len + rl <= cap) {
				memmove(out + at + rl, out + at, len - at);
				len += rl;
			}
			break;
		}
		case 5: // cut the tail (rarely: it takes the xref)
			if (next_rand(&rs) % 4 == 0) len = at;
			break;
		}
	}
	return len;
}

static unsigned char *read_file(const char *path, size_t *n) {
	FILE *f = fopen(path, "rb");
	if (f == NULL) return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
	*n = fread(b, 1, sz > 0 ? (size_t)sz : 0, f);
	fclose(f);
	return b;
}

int main(int argc, char **argv) {
	int max_pages = 1 << 30, i = 1, mut = 0;
	long long from = 0, to = 0;
	const char *out = NULL;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-mutate") == 0) {
			mut = 1;
		} else if (i + 1 < argc && strcmp(argv[i], "-pages") == 0) {
			max_pages = atoi(argv[++i]);
		} else if (i + 1 < argc && strcmp(argv[i], "-from") == 0) {
			from = atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(argv[i], "-to") == 0) {
			to = atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(argv[i], "-out") == 0) {
			out = argv[++i];
		} else {
			fprintf(stderr, "unknown flag %s\n", argv[i]);
			return 2;
		}
	}
	if (!mut) {
		for (; i < argc; i++) {
			run(argv[i], max_pages);
		}
		return 0;
	}
	int nfiles = argc - i;
	if (nfiles <= 0 || out == NULL) {
		fprintf(stderr, "-mutate needs -out and files\n");
		return 2;
	}
	for (long long k = from; k < to; k++) {
		const char *src = argv[i + k % nfiles];
		size_t n = 0;
		unsigned char *in = read_file(src, &n);
		if (in == NULL) {
			fprintf(stderr, "cannot read %s\n", src);
			return 2;
		}
		size_t cap = n + 4096;
		unsigned char *m = malloc(cap);
		size_t len = mutate((uint64_t)k, in, n, m, cap);
		FILE *f = fopen(out, "wb");
		if (f == NULL || fwrite(m, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "cannot write %s\n", out);
			return 2;
		}
		free(in);
		free(m);
		printf("mutant %lld of %s: ", k, src);
		fflush(stdout);
		run(out, max_pages);
		fflush(stdout);
	}
	return 0;
}

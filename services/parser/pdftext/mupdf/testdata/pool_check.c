// The self-test of the pool allocator (pt_pool.c, -tags mupdfpool), kept
// out of every build of the package: TestPoolAllocator compiles it with
// gcc, with and without -fsanitize=address,undefined, and runs it.
// Usage: pool_check  (prints what went wrong and exits 1, or exits 0)

#include "../pt_pool.c"

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
static const char *pt_pool_check(size_t region_size) {
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

int main(void) {
	static const size_t sizes[] = {64 << 10, 1 << 20, 4 << 20, 512 << 20};
	int failed = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		const char *bad = pt_pool_check(sizes[i]);
		if (bad != NULL) {
			printf("pool of %zu KiB: %s\n", sizes[i] >> 10, bad);
			failed = 1;
		}
	}
	return failed;
}

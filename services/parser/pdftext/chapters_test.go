package pdftext

import "testing"

func TestChapterIndex(t *testing.T) {
	outline := []OutlineEntry{
		{Level: 1, Title: "Preface", Page: 1},
		{Level: 1, Title: "2 Methods", Page: 2},
		{Level: 2, Title: "2.1  Data", Page: 3},
		{Level: 2, Title: "Models", Page: 3},
		{Level: 4, Title: "Deep jump", Page: 4}, // more than one level deeper
		{Level: 1, Title: "Lost", Page: -1},     // unknown target: numbered, never chosen
		{Level: 1, Title: "2024 Annual Report", Page: 6},
		{Level: 2, Title: "4.2. Numbered", Page: 7},
	}
	tests := []struct {
		page     int
		wantPath string
		wantNum  string
	}{
		{0, "", ""},
		{1, "Preface", "1"},
		{2, "2 Methods", "2"},
		{3, "2 Methods › Models", "2.2"}, // two entries on one page: the later one
		{4, "2 Methods › Models › Deep jump", "2.2.1"},
		{5, "2 Methods › Models › Deep jump", "2.2.1"},
		{6, "2024 Annual Report", "4"},
		{7, "2024 Annual Report › 4.2. Numbered", "4.2"},
		{100, "2024 Annual Report › 4.2. Numbered", "4.2"},
	}
	idx := newChapterIndex(outline)
	for _, tc := range tests {
		got := idx.at(tc.page)
		if got.path != tc.wantPath || got.num != tc.wantNum {
			t.Errorf("page %d: got (%q, %q), want (%q, %q)", tc.page, got.path, got.num, tc.wantPath, tc.wantNum)
		}
	}
	if got := newChapterIndex(nil).at(3); got != (chapter{}) {
		t.Errorf("no outline: got %+v, want empty chapter", got)
	}
}

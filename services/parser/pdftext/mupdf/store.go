package mupdf

// DefaultMaxStore is Engine.MaxStore when none is given. MuPDF's
// store keeps what pages share: fonts, colour spaces, shadings. Images
// are not loaded when text is extracted, so it holds mostly fonts, which
// are slow to load again (an embedded CJK font can run to 10 MiB and
// more). 64 MiB keeps every font a document still uses while bounding
// its worst case well under the parser's 160 MiB; on Debian's manuals 4
// MiB and 64 MiB give the same speed and peak (bench/parser.sh prints
// both).
const DefaultMaxStore = 64 << 20

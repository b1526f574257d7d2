package mupdf

// DefaultMaxStore is Engine.MaxStore when none is given. MuPDF's
// store keeps what pages share: fonts, colour spaces, shadings. Images
// are not loaded when text is extracted, so it holds mostly fonts. The
// parser service does not use this default: it passes MUPDF_STORE_MIB
// (4 MiB), because every page worker of every document in flight has a
// store of its own, and LilyPond's notation manual made a parse hold 211
// MiB at 64 MiB against 50 at 4, for 30 % more CPU; fonts stay loaded while
// their document is open whatever the size (docs/PERFORMANCE.md).
const DefaultMaxStore = 64 << 20

package pdfgen

import (
	"fmt"
	"strings"
)

// Sample typography.
const (
	sampleTitleSize      = 22.0
	sampleChapterSize    = 18.0
	sampleSectionSize    = 14.0
	sampleSubsectionSize = 12.0
	sampleBodySize       = DefaultSize
	sampleGutter         = 24.0
)

// Sample returns a realistic multi-chapter document with exactly pages
// pages (at least 1): a title (also Doc.Title) on the first page, numbered chapters ("1
// Introduction"), sections ("1.1 ...") and subsections ("1.1.1 ...") as
// larger bold headings, body paragraphs of English and of Chinese text
// (Chinese sentences end with 。！ or ？), and an outline mirroring the
// headings with their exact positions. Every fourth page starting with the
// third (index 2, 6, 10, ...) is set in two columns. Paragraphs may continue
// across columns and pages. The result depends only on pages.
func Sample(pages int) Doc {
	if pages < 1 {
		pages = 1
	}
	s := &sampler{
		rng:   rng(0x9E3779B97F4A7C15),
		pages: pages,
		doc: Doc{
			Title:      "Document Processing Pipelines: A Sample Report",
			PageWidth:  A4Width,
			PageHeight: A4Height,
		},
	}
	s.newPage()
	s.place(Block{Text: s.doc.Title, Size: sampleTitleSize, Bold: true}, 0, sampleTitleSize)
	s.place(Block{Text: "文档处理流水线示例报告", Size: sampleSectionSize, Bold: true}, 0, sampleSectionSize)
	s.y += 12
	for ch := 1; !s.full; ch++ {
		s.chapter(ch)
	}
	return s.doc
}

// sampler lays out generated content page by page.
type sampler struct {
	rng   rng
	pages int
	doc   Doc
	full  bool // the last page is full; stop generating

	page    int       // current page index
	columns []float64 // x of each frame on the current page
	colW    float64
	col     int     // current frame
	y       float64 // next free y in the current frame
}

// newPage starts the next page; it sets full when there is none.
func (s *sampler) newPage() bool {
	if len(s.doc.Pages) == s.pages {
		s.full = true
		return false
	}
	s.doc.Pages = append(s.doc.Pages, Page{})
	s.page = len(s.doc.Pages) - 1
	inner := s.doc.PageWidth - 2*Margin
	if s.page%4 == 2 {
		s.colW = (inner - sampleGutter) / 2
		s.columns = []float64{Margin, Margin + s.colW + sampleGutter}
	} else {
		s.colW = inner
		s.columns = []float64{Margin}
	}
	s.col, s.y = 0, Margin
	return true
}

// nextFrame moves to the next column or page; false when out of pages.
func (s *sampler) nextFrame() bool {
	if s.col+1 < len(s.columns) {
		s.col++
		s.y = Margin
		return true
	}
	return s.newPage()
}

func (s *sampler) bottom() float64 { return s.doc.PageHeight - Margin }

// place puts b at the current position if its first need points fit,
// moving to the next frame otherwise. Text that does not fit continues in
// the following frames. It returns the page and y of the block's top, or
// ok false when the document is full.
func (s *sampler) place(b Block, gapBefore, need float64) (page int, y float64, ok bool) {
	if s.full {
		return 0, 0, false
	}
	if s.y > Margin {
		s.y += gapBefore
	}
	if s.y+need > s.bottom() && !s.nextFrame() {
		return 0, 0, false
	}
	page, y = s.page, s.y
	src := []rune(b.Text)
	for {
		lines := wrap(src, b.Size, s.colW, b.Bold)
		lh := lineHeight(b.Size)
		fit := int((s.bottom() - s.y) / lh)
		if fit >= len(lines) {
			s.add(b, string(src))
			s.y += linesHeight(lines, b.Size)
			return page, y, true
		}
		if fit >= 2 {
			s.add(b, string(src[:lines[fit-1].end]))
			src = src[lines[fit].start:]
		}
		if !s.nextFrame() {
			return page, y, true
		}
	}
}

func (s *sampler) add(b Block, text string) {
	b.Text = text
	b.X, b.Y, b.Width = s.columns[s.col], s.y, s.colW
	p := &s.doc.Pages[s.page]
	p.Blocks = append(p.Blocks, b)
}

// heading places a heading kept together with the first lines after it and
// returns its outline item.
func (s *sampler) heading(text string, size, gap float64) (OutlineItem, bool) {
	need := lineHeight(size) + 6 + 3*lineHeight(sampleBodySize)
	page, y, ok := s.place(Block{Text: text, Size: size, Bold: true}, gap, need)
	return OutlineItem{Title: text, Page: page, Y: y}, ok
}

func (s *sampler) paragraph() bool {
	var text string
	switch s.rng.intn(5) {
	case 0, 1:
		text = s.latinParagraph()
	case 2, 3:
		text = s.chineseParagraph()
	default:
		text = s.mixedParagraph()
	}
	_, _, ok := s.place(Block{Text: text, Size: sampleBodySize}, 6, 2*lineHeight(sampleBodySize))
	return ok
}

func (s *sampler) chapter(n int) {
	if n > 1 || s.y > Margin+200 {
		if !s.newPage() {
			return
		}
	}
	title := fmt.Sprintf("%d %s", n, pick(chapterTitles, n-1))
	ch, ok := s.heading(title, sampleChapterSize, 18)
	if !ok {
		return
	}
	defer func() { s.doc.Outline = append(s.doc.Outline, ch) }()
	if !s.paragraph() {
		return
	}
	sections := 2 + s.rng.intn(3)
	secBase := s.rng.intn(len(sectionTitles)) // consecutive titles never repeat within a chapter
	for sec := 1; sec <= sections; sec++ {
		t := fmt.Sprintf("%d.%d %s", n, sec, pick(sectionTitles, secBase+sec))
		item, ok := s.heading(t, sampleSectionSize, 12)
		if !ok {
			return
		}
		ok = s.paragraphs(1 + s.rng.intn(3))
		if ok && s.rng.intn(3) == 0 {
			subs := 1 + s.rng.intn(2)
			subBase := s.rng.intn(len(subsectionTitles))
			for sub := 1; sub <= subs && ok; sub++ {
				st := fmt.Sprintf("%d.%d.%d %s", n, sec, sub, pick(subsectionTitles, subBase+sub))
				var child OutlineItem
				if child, ok = s.heading(st, sampleSubsectionSize, 10); ok {
					item.Children = append(item.Children, child)
					ok = s.paragraphs(1 + s.rng.intn(3))
				}
			}
		}
		ch.Children = append(ch.Children, item)
		if !ok {
			return
		}
	}
}

func (s *sampler) paragraphs(n int) bool {
	for range n {
		if !s.paragraph() {
			return false
		}
	}
	return true
}

func (s *sampler) latinParagraph() string {
	sentences := make([]string, 3+s.rng.intn(4))
	for i := range sentences {
		opening := pick(enOpenings, s.rng.intn(len(enOpenings)))
		subject := pick(enSubjects, s.rng.intn(len(enSubjects)))
		if opening == "" {
			subject = strings.ToUpper(subject[:1]) + subject[1:]
		}
		sentences[i] = opening + subject + " " + pick(enPredicates, s.rng.intn(len(enPredicates))) +
			pick(enTails, s.rng.intn(len(enTails))) + "."
	}
	return strings.Join(sentences, " ")
}

func (s *sampler) chineseParagraph() string {
	var b strings.Builder
	for range 3 + s.rng.intn(4) {
		b.WriteString(pick(zhOpenings, s.rng.intn(len(zhOpenings))))
		b.WriteString(pick(zhSubjects, s.rng.intn(len(zhSubjects))))
		b.WriteString(pick(zhPredicates, s.rng.intn(len(zhPredicates))))
		b.WriteString(pick(zhEndings, s.rng.intn(len(zhEndings))))
	}
	return b.String()
}

func (s *sampler) mixedParagraph() string {
	return s.chineseParagraph() + " " + s.latinParagraph()
}

func pick(list []string, i int) string { return list[i%len(list)] }

// rng is a splitmix64 generator: deterministic across Go versions.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9E3779B97F4A7C15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

var (
	chapterTitles = []string{
		"Introduction", "Background and Related Work", "文档解析方法", "System Architecture",
		"数据预处理", "Chunking Strategies", "Embedding and Retrieval", "实验与评估",
		"Deployment and Operations", "Conclusion",
	}
	sectionTitles = []string{
		"Motivation", "Problem Statement", "设计目标", "Overview", "Text Extraction",
		"版面分析", "Error Handling", "性能优化", "Evaluation Metrics", "Limitations",
		"Scalability", "相关工作", "Data Model", "Observability",
	}
	subsectionTitles = []string{
		"Assumptions", "实现细节", "Worked Example", "Edge Cases", "小结", "Complexity",
	}
	enOpenings = []string{
		"", "", "", "In practice, ", "As a result, ", "For example, ", "In most deployments, ",
		"Unlike earlier designs, ", "To keep latency low, ", "In this chapter, ",
	}
	enSubjects = []string{
		"the document parser", "the chunking stage", "each worker", "the message queue",
		"the embedding model", "the vector index", "a long paragraph", "the layout analyser",
		"the ingestion service", "every pipeline stage", "the outline extractor", "the retry policy",
	}
	enPredicates = []string{
		"splits long sections into overlapping chunks", "preserves the heading hierarchy of the source",
		"acknowledges a message only after the result is stored", "handles two-column pages in reading order",
		"keeps Chinese and Latin text in their original order", "reports progress for long-running tasks",
		"retries transient failures with exponential backoff", "writes intermediate results to object storage",
		"detects sentence boundaries before merging lines", "scales horizontally with the number of consumers",
		"rejects malformed input with a permanent error", "joins paragraphs that continue across pages",
	}
	enTails = []string{
		"", "", "", " without blocking other requests", " under sustained load",
		" for documents with thousands of pages", " in a deterministic way", " when the input is well formed",
	}
	zhOpenings = []string{
		"", "", "首先，", "其次，", "此外，", "在实际应用中，", "因此，", "值得注意的是，",
		"在本章中，", "一般来说，", "与传统方法相比，", "为了提高准确率，",
	}
	zhSubjects = []string{
		"文档解析器", "文本切分模块", "向量检索系统", "消息队列", "我们的流水线",
		"每个处理阶段", "版面分析算法", "嵌入模型", "这种方法", "整个系统",
		"中文分句规则", "页面内容流",
	}
	zhPredicates = []string{
		"需要正确处理跨页的段落", "能够在高并发场景下稳定运行", "会把长文本拆分成较小的片段",
		"必须保留原始文档的章节结构", "可以显著降低检索延迟", "依赖于准确的文字提取",
		"应当对失败的任务进行重试", "将结果写入对象存储", "支持中英文混合排版",
		"按照标题层级组织内容", "在处理双栏页面时更加复杂", "提供了可观测的运行指标",
		"通过 NATS JetStream 接收任务消息", "使用 MuPDF 提取 PDF 页面中的文字", "把 1024 维的向量写入索引",
	}
	zhEndings = []string{"。", "。", "。", "！", "？"}
)

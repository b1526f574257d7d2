# bench/lib.sh — shared by the bench scripts (sourced, not run).

# need_debian_pdfs installs, with apt-get, Debian's large manuals and
# mutool when they are missing: r-doc-pdf, octave-doc, gnuplot-doc and
# mupdf-tools.
need_debian_pdfs() {
	local need=()
	[ -e /usr/share/doc/r-doc-pdf/manual/refman.pdf ] || [ -e /usr/share/R/doc/manual/fullrefman.pdf ] || need+=(r-doc-pdf)
	[ -e /usr/share/doc/octave/octave.pdf ] || [ -e /usr/share/doc/octave/octave.pdf.gz ] || need+=(octave-doc)
	[ -e /usr/share/doc/gnuplot/gnuplot.pdf ] || [ -e /usr/share/doc/gnuplot-doc/gnuplot.pdf ] || need+=(gnuplot-doc)
	command -v mutool >/dev/null || need+=(mupdf-tools)
	if [ ${#need[@]} -gt 0 ]; then
		echo "installing ${need[*]}" >&2
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
	fi
}

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

# load_control prints the machine's load and its real parallel capacity:
# the same CPU-bound work run twice at once against once. Near 1.0 means
# two free cores; near 2.0 means the cores are shared with other load and
# figures are noisy (as bench/parser.sh prints).
load_control() {
	local z one two s e
	z=$(mktemp)
	head -c 200000000 /dev/zero >"$z"
	s=$(date +%s.%N); sha256sum "$z" >/dev/null; e=$(date +%s.%N); one=$(echo "$e - $s" | bc -l)
	s=$(date +%s.%N); sha256sum "$z" >/dev/null & sha256sum "$z" >/dev/null & wait; e=$(date +%s.%N); two=$(echo "$e - $s" | bc -l)
	rm -f "$z"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; two CPU-bound jobs at once take $(printf '%.2f' "$(echo "$two / $one" | bc -l)")x one job"
}

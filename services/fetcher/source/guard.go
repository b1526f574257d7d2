package source

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Guard says which addresses http and https task URLs may reach. The zero
// value refuses every address that is not public unicast (see Check), so a
// task cannot make the fetcher read loopback services, the private network
// or a cloud metadata endpoint. The check runs on the address actually
// dialled, after DNS, for every connection (so every redirect hop).
type Guard struct {
	// AllowHosts are URL hosts dialled whatever they resolve to
	// (FETCH_ALLOW_HOSTS): "minio.internal" (any port), "minio.internal:9000"
	// (that port only), "*.corp.example" (subdomains), "127.0.0.1:8080",
	// "[::1]:8080". Compared case-insensitively with the URL's host.
	AllowHosts []string
	// AllowCIDRs are address ranges dialled although they are not public
	// (FETCH_ALLOW_CIDRS), e.g. 10.1.2.0/24 for a private MinIO.
	AllowCIDRs []netip.Prefix
	// Resolver looks up host names (default: net.DefaultResolver).
	Resolver Resolver
}

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// RefusedError says which rule refused which address. It unwraps to
// ErrRefused.
type RefusedError struct {
	// Host is the host as the URL names it.
	Host string
	// Addr is the address refused; invalid when the name itself was.
	Addr netip.Addr
	// Rule names the refusing rule, e.g. "loopback".
	Rule string
}

func (e *RefusedError) Error() string {
	switch {
	case !e.Addr.IsValid():
		return fmt.Sprintf("%s is %s (set FETCH_ALLOW_HOSTS to allow)", e.Host, e.Rule)
	case e.Host == e.Addr.String():
		return fmt.Sprintf("%s is %s (set FETCH_ALLOW_CIDRS to allow)", e.Addr, e.Rule)
	default:
		return fmt.Sprintf("%s resolves to %s, which is %s (set FETCH_ALLOW_HOSTS or FETCH_ALLOW_CIDRS to allow)",
			e.Host, e.Addr, e.Rule)
	}
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// rangeRule is a refused address range and the name of its rule.
type rangeRule struct {
	prefix netip.Prefix
	rule   string
}

// refusedRanges are checked in order; the first match names the rule, so
// specific ranges come before the ranges that contain them. IPv4-mapped
// IPv6 addresses are unmapped first; NAT64 and 6to4 addresses are judged by
// the IPv4 address they carry (see embeddedV4).
var refusedRanges = func() []rangeRule {
	rules := []struct{ cidr, rule string }{
		// IPv4
		{"169.254.169.254/32", "link-local (cloud metadata)"},
		{"255.255.255.255/32", "broadcast"},
		{"0.0.0.0/8", "unspecified (this network)"},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.0.0.0/24", "reserved (IETF protocol assignments)"},
		{"192.0.2.0/24", "reserved (documentation)"},
		{"192.88.99.0/24", "reserved (6to4 relay)"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"198.18.0.0/15", "reserved (benchmarking)"},
		{"198.51.100.0/24", "reserved (documentation)"},
		{"203.0.113.0/24", "reserved (documentation)"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved (future use)"},
		// IPv6
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "reserved (IPv4-compatible)"},
		{"64:ff9b:1::/48", "reserved (local-use NAT64)"},
		{"100::/64", "reserved (discard-only)"},
		{"2001::/32", "reserved (Teredo)"},
		{"2001:2::/48", "reserved (benchmarking)"},
		{"2001:10::/28", "reserved (ORCHID)"},
		{"2001:20::/28", "reserved (ORCHIDv2)"},
		{"2001:db8::/32", "reserved (documentation)"},
		{"3fff::/20", "reserved (documentation)"},
		{"fd00:ec2::254/128", "unique-local (cloud metadata)"},
		{"fc00::/7", "unique-local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]rangeRule, len(rules))
	for i, r := range rules {
		out[i] = rangeRule{netip.MustParsePrefix(r.cidr), r.rule}
	}
	return out
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// embeddedV4 returns the IPv4 address a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address carries, and what kind it is.
func embeddedV4(a netip.Addr) (netip.Addr, string, bool) {
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	}
	return netip.Addr{}, "", false
}

// Check returns the rule that refuses a, or "" when a may be dialled: a
// public unicast address, or one inside AllowCIDRs.
func (g *Guard) Check(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if g.allowedAddr(a) {
		return ""
	}
	if v4, kind, ok := embeddedV4(a); ok {
		if g.allowedAddr(v4) {
			return ""
		}
		if rule := rangeOf(v4); rule != "" {
			return fmt.Sprintf("%s address of %s, %s", kind, v4, rule)
		}
		return ""
	}
	return rangeOf(a)
}

func rangeOf(a netip.Addr) string {
	for _, r := range refusedRanges {
		if r.prefix.Contains(a) {
			return r.rule
		}
	}
	return ""
}

func (g *Guard) allowedAddr(a netip.Addr) bool {
	for _, p := range g.AllowCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedHost reports whether host (lowercase, no trailing dot) on port is
// in AllowHosts.
func (g *Guard) allowedHost(host, port string) bool {
	for _, e := range g.AllowHosts {
		h, p := splitAllowEntry(e)
		if p != "" && p != port {
			continue
		}
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

// splitAllowEntry splits "host", "host:port", "[v6]:port" or "v6".
func splitAllowEntry(e string) (host, port string) {
	e = strings.ToLower(strings.TrimSpace(e))
	if h, p, err := net.SplitHostPort(e); err == nil {
		return strings.TrimSuffix(h, "."), p
	}
	return strings.TrimSuffix(strings.Trim(e, "[]"), "."), ""
}

// normHost lowercases a host and drops a trailing dot and IPv6 brackets.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// checkName refuses a host by its name alone, before any lookup: an address
// literal by its range, a non-canonical numeric IPv4 form (2130706433,
// 0177.0.0.1, 0x7f.1: resolvers disagree about what they mean), and the
// loopback names. It returns the address when host is a literal.
func (g *Guard) checkName(host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if rule := g.Check(a); rule != "" {
			return a, &RefusedError{Host: host, Addr: a, Rule: rule}
		}
		return a, nil
	}
	if v4, ok := parseLooseIPv4(host); ok {
		rule := "a non-canonical IPv4 form (decimal, octal or hex) of " + v4.String()
		if r := rangeOf(v4); r != "" {
			rule += ", " + r
		}
		return netip.Addr{}, &RefusedError{Host: host, Rule: rule + "; write addresses as dotted quads"}
	}
	if endsInNumber(host) {
		// What WHATWG URL parsers read as an IPv4 address and fail on.
		return netip.Addr{}, &RefusedError{Host: host, Rule: "a malformed numeric address"}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return netip.Addr{}, &RefusedError{Host: host, Rule: "a loopback name"}
	}
	return netip.Addr{}, nil
}

// endsInNumber reports whether the last label is all digits or 0x hex.
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		last = l[2:]
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// parseLooseIPv4 parses what inet_aton accepts — one to four parts, each
// decimal, octal (leading 0) or hex (0x) — when it is not a canonical
// dotted quad (netip.ParseAddr has already refused it).
func parseLooseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case p == "":
			return netip.Addr{}, false
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			p, base = p[2:], 16
		case p == "0x" || p == "0X":
			p, base = "0", 16
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	// The last part fills the remaining bytes.
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// dialer connects to task URLs through the guard.
type dialer struct {
	guard      *Guard
	beforeDial func(netip.AddrPort) error // tests: a net under the guard
	net        net.Dialer                 // checks every socket address in Control
	trusted    net.Dialer                 // for AllowHosts
}

func newDialer(g *Guard, beforeDial func(netip.AddrPort) error) *dialer {
	d := &dialer{guard: g, beforeDial: beforeDial}
	d.net = net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: d.control}
	d.trusted = net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return d
}

// control refuses a socket address the guard does not allow: the last
// word, on the address the kernel is asked to connect to.
func (d *dialer) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: unparsable socket address: %w", address, ErrRefused)
	}
	if rule := d.guard.Check(ap.Addr()); rule != "" {
		return &RefusedError{Host: ap.Addr().String(), Addr: ap.Addr(), Rule: rule}
	}
	return nil
}

// DialContext resolves addr's host, refuses it if any of its addresses is
// not allowed, and connects to the addresses in turn, each checked again in
// control. Hosts in AllowHosts skip both checks.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, ErrBadURL)
	}
	host := normHost(h)
	if host == "" {
		return nil, &RefusedError{Host: addr, Rule: "an empty host (the local system)"}
	}
	trusted := d.guard.allowedHost(host, port)
	var lit netip.Addr
	if trusted {
		lit, _ = netip.ParseAddr(host)
	} else if lit, err = d.guard.checkName(host); err != nil {
		return nil, err
	}
	addrs := []netip.Addr{lit}
	if !lit.IsValid() {
		r := d.guard.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	dl := &d.trusted
	if !trusted {
		dl = &d.net
		// One refused address refuses the name: a public name that also
		// resolves into the private network is not one to half-trust.
		for _, a := range addrs {
			if rule := d.guard.Check(a); rule != "" {
				return nil, &RefusedError{Host: host, Addr: a.Unmap(), Rule: rule}
			}
		}
	}
	var first error
	for i, a := range addrs {
		actx := ctx
		if deadline, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			// Leave time for the other addresses, as net.Dialer does.
			var cancel context.CancelFunc
			actx, cancel = context.WithDeadline(ctx, time.Now().Add(max(time.Until(deadline)/time.Duration(len(addrs)-i), 2*time.Second)))
			defer cancel()
		}
		ap := netip.AddrPortFrom(a.Unmap(), portNum(port))
		if d.beforeDial != nil {
			if err := d.beforeDial(ap); err != nil {
				return nil, err
			}
		}
		c, err := dl.DialContext(actx, network, ap.String())
		if err == nil {
			return wrapConn(c), nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func portNum(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

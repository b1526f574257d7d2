package fetcher_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/fetcher"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c fetcher.Config)
		wantErr string
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, c fetcher.Config) {
			if c.MaxDuration != 10*time.Minute || c.MinRate != 8<<10 || c.RateWindow != 30*time.Second || c.MaxRedirects != 5 {
				t.Errorf("got max duration %s, min rate %d, window %s, redirects %d; want 10m, 8192, 30s, 5",
					c.MaxDuration, c.MinRate, c.RateWindow, c.MaxRedirects)
			}
			if len(c.Guard.AllowHosts) != 0 || len(c.Guard.AllowCIDRs) != 0 {
				t.Errorf("got allow-lists %v %v, want none: the guard is on by default", c.Guard.AllowHosts, c.Guard.AllowCIDRs)
			}
		}},
		{name: "allow-lists", env: map[string]string{
			"FETCH_ALLOW_HOSTS": " minio:9000, *.corp.example ,,",
			"FETCH_ALLOW_CIDRS": "10.1.2.0/24, 192.168.7.9, fd00::/8",
		}, check: func(t *testing.T, c fetcher.Config) {
			if want := []string{"minio:9000", "*.corp.example"}; !slices.Equal(c.Guard.AllowHosts, want) {
				t.Errorf("got hosts %q, want %q", c.Guard.AllowHosts, want)
			}
			want := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("192.168.7.9/32"), netip.MustParsePrefix("fd00::/8")}
			if !slices.Equal(c.Guard.AllowCIDRs, want) {
				t.Errorf("got CIDRs %v, want %v", c.Guard.AllowCIDRs, want)
			}
		}},
		{name: "limits off", env: map[string]string{"FETCH_MIN_RATE": "0", "FETCH_MAX_REDIRECTS": "0", "FETCH_MAX_DURATION": "1h"},
			check: func(t *testing.T, c fetcher.Config) {
				if c.MinRate >= 0 || c.MaxRedirects >= 0 || c.MaxDuration != time.Hour {
					t.Errorf("got min rate %d, redirects %d, duration %s; want both negative (off) and 1h", c.MinRate, c.MaxRedirects, c.MaxDuration)
				}
			}},
		{name: "bad CIDR", env: map[string]string{"FETCH_ALLOW_CIDRS": "10.0.0.0/33"}, wantErr: `FETCH_ALLOW_CIDRS: "10.0.0.0/33"`},
		{name: "bad rate", env: map[string]string{"FETCH_MIN_RATE": "fast"}, wantErr: "FETCH_MIN_RATE"},
		{name: "negative duration", env: map[string]string{"FETCH_MAX_DURATION": "-1s"}, wantErr: "FETCH_MAX_DURATION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fetcher.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			tc.check(t, c)
		})
	}
}

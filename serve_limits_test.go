package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clearTransferEnv makes the test independent of the caller's environment.
func clearTransferEnv(t *testing.T) {
	for _, k := range []string{"TYST_PUBLIC_HOST", "TYST_WRITE_IDLE_TIMEOUT", "TYST_UPLOAD_MIN_RATE", "TYST_UPLOAD_GRACE",
		"TYST_MAX_DOWNLOADS", "TYST_MAX_DOWNLOADS_PER_USER", "TYST_MAX_UPLOADS", "TYST_MAX_UPLOADS_PER_USER",
		"TYST_MAX_EXPORTS", "TYST_MAX_EXPORTS_PER_USER", "TYST_EXPORT_QUOTA_MB", "TYST_EXPORT_RESERVE_MB", "TYST_EXPORT_RESERVE_PERCENT"} {
		t.Setenv(k, "")
	}
}

// TestServe_RefusesBadTransferSettings: a transfer limit out of range, by
// flag or environment, stops serve with a message that names the setting
// and not its value.
func TestServe_RefusesBadTransferSettings(t *testing.T) {
	clearKeyEnv(t)
	clearTransferEnv(t)
	for name, c := range map[string]struct {
		env     map[string]string
		args    []string
		mention string
	}{
		"MaxDownloadsZero":    {nil, []string{"--max-downloads", "0"}, "--max-downloads"},
		"PerUserNegative":     {nil, []string{"--max-uploads-per-user", "-3"}, "--max-uploads-per-user"},
		"MinRateZero":         {nil, []string{"--upload-min-rate", "0"}, "--upload-min-rate"},
		"WriteIdleNegative":   {nil, []string{"--write-idle-timeout", "-1s"}, "--write-idle-timeout"},
		"GraceNotADuration":   {map[string]string{"TYST_UPLOAD_GRACE": "soon-ish-7731"}, nil, "TYST_UPLOAD_GRACE"},
		"MaxUploadsNotNumber": {map[string]string{"TYST_MAX_UPLOADS": "many-7731"}, nil, "TYST_MAX_UPLOADS"},
		"MaxExportsZero":      {nil, []string{"--max-exports-per-user", "0"}, "--max-exports-per-user"},
		"QuotaZero":           {map[string]string{"TYST_EXPORT_QUOTA_MB": "0"}, nil, "--export-quota-mb"},
		"ReserveNegative":     {nil, []string{"--export-reserve-mb", "-7731"}, "--export-reserve-mb"},
		"ReservePercentHigh":  {nil, []string{"--export-reserve-percent", "77"}, "--export-reserve-percent"},
		"ReserveNotNumber":    {map[string]string{"TYST_EXPORT_RESERVE_MB": "lots-7731"}, nil, "TYST_EXPORT_RESERVE_MB"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "d"), "--listen", "127.0.0.1:0"}, c.args...)
			_, errOut, code := runCmd(t, nil, args...)
			if code == 0 || !strings.Contains(errOut, c.mention) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %s", code, errOut, c.mention)
			}
			if strings.Contains(errOut, "7731") {
				t.Fatalf("stderr shows the value: %q", errOut)
			}
		})
	}
}

// TestServe_HostsAndHSTS: under TLS, serve answers loopback, IP addresses
// and the --public-host names, refuses any other Host (DNS rebinding), and
// marks every response Strict-Transport-Security.
func TestServe_HostsAndHSTS(t *testing.T) {
	clearKeyEnv(t)
	clearTransferEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mustSelfSigned(t, certFile, keyFile)
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "d"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--public-host", "tyst.example.org, Box.LAN")
	_, port, _ := net.SplitHostPort(srv.addr)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // our own self-signed test certificate
	}}
	get := func(host string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+"/healthz", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "tyst.example.org", "box.lan:443", "192.0.2.1"} {
		resp := get(host)
		if resp.StatusCode != 200 {
			t.Fatalf("Host %q: %d, want 200", host, resp.StatusCode)
		}
		if got, want := resp.Header.Get("Strict-Transport-Security"), "max-age=63072000"; got != want {
			t.Fatalf("Host %q: Strict-Transport-Security=%q, want %q", host, got, want)
		}
	}
	for _, host := range []string{"evil.example", "tyst.example.org.evil.example", "lan"} {
		resp := get(host)
		if resp.StatusCode != 403 || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("Host %q: %d, want 403 with HSTS", host, resp.StatusCode)
		}
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
}

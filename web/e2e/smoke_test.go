package e2e

import "testing"

func TestSmoke(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := startBrowser(t, srv, browserOptions{})
	setupAdmin(t, srv, b, true)
	b.screen("05-records-empty")
	b.checkClean()
}

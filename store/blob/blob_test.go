package blob_test

import (
	"fmt"
	"regexp"
	"testing"

	"tyst/store/blob"
	"tyst/store/blob/blobtest"
)

// The name rules of DESIGN §3: blobs are keyed hashes, exports a prefix and
// a random id.
var (
	blobNames   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	exportNames = regexp.MustCompile(`^export-[0-9a-f]{32}$`)
)

// blobName and exportName return the i-th of many valid names; the first
// two characters vary, so blobs spread over fan-out directories.
func blobName(i int) string { return fmt.Sprintf("%02x%062x", i*37%256, i) }

func exportName(i int) string { return fmt.Sprintf("export-%032x", i) }

func TestMemory(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return blob.NewMemory(blob.MemoryOptions{Names: blobNames})
	}, blobName)
}

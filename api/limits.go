package api

import (
	"net/http"
	"strconv"
	"sync"

	"tyst/store"
)

// Defaults of the transfer limits, sized for a Raspberry Pi with 1 GiB: a
// download holds a few MiB of decryption buffers while it runs, an upload
// somewhat more, so the totals keep them under about 150 MiB together, and
// one account (one viewer, one field box) can take only a share of them.
const (
	DefaultMaxDownloads        = 32
	DefaultMaxDownloadsPerUser = 4
	DefaultMaxUploads          = 8
	DefaultMaxUploadsPerUser   = 2
	// An export decrypts, hashes and encrypts the audio twice and writes
	// a package larger than it: two at a time keep a small box's disk and
	// CPU for uploads and live streams.
	DefaultMaxExports        = 2
	DefaultMaxExportsPerUser = 1
)

// retryAfterSeconds is the Retry-After of a refused transfer: a player or
// upload retries soon, when a running transfer may have ended.
const retryAfterSeconds = 5

// slots counts transfers of one kind in progress, per account and in all.
type slots struct {
	kind            string // "downloads", "uploads" or "exports", for messages
	maxUser, maxAll int
	mu              sync.Mutex
	perUser         map[uint64]int
	all             int
}

func newSlots(kind string, maxAll, maxUser, defAll, defUser int) *slots {
	if maxAll <= 0 {
		maxAll = defAll
	}
	if maxUser <= 0 {
		maxUser = defUser
	}
	return &slots{kind: kind, maxAll: maxAll, maxUser: maxUser, perUser: map[uint64]int{}}
}

// acquire takes a slot for the request's principal, or answers why not: 429
// rate_limited when the account has its share running, 503 unavailable when
// the server has all it takes. Either refusal sets Retry-After and closes
// an HTTP/1 connection (the client may not have sent its body, and a busy
// server keeps no idle connection for it). The caller calls release, once
// or more.
func (sl *slots) acquire(w http.ResponseWriter, r *http.Request) (release func(), err error) {
	var user uint64
	if p := store.PrincipalFrom(r.Context()); p != nil {
		user = p.UserID
	}
	sl.mu.Lock()
	switch {
	case sl.perUser[user] >= sl.maxUser:
		err = apiError(store.CodeRateLimited, "too many "+sl.kind+" at once for this account: wait for one to finish")
	case sl.all >= sl.maxAll:
		err = apiError(store.CodeUnavailable, "the server is busy with other "+sl.kind+": retry shortly")
	default:
		sl.perUser[user]++
		sl.all++
	}
	sl.mu.Unlock()
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		if r.ProtoMajor == 1 { // HTTP/2 would end the client's other streams too
			w.Header().Set("Connection", "close")
		}
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			sl.mu.Lock()
			defer sl.mu.Unlock()
			if sl.perUser[user]--; sl.perUser[user] <= 0 {
				delete(sl.perUser, user)
			}
			sl.all--
		})
	}, nil
}

package stream

import (
	"tyst/store"
	"tyst/stream/proto"
)

// Streams held (live, resumable or being stored) are counted in all, per
// user account and per API token, when a start claims its record: the
// check and the count are one step under Server.mu, so concurrent starts
// never pass a bound together, and a refused start creates no spool.

// tally counts what the principals hold, in all, per user account and
// per API token (0: none). Guarded by Server.mu.
type tally struct {
	all         int
	user, token map[uint64]int
}

func newTally() tally { return tally{user: map[uint64]int{}, token: map[uint64]int{}} }

func (t *tally) add(userID, tokenID uint64) {
	t.all++
	t.user[userID]++
	if tokenID != 0 {
		t.token[tokenID]++
	}
}

// remove undoes an add; a count that reaches zero leaves its map.
func (t *tally) remove(userID, tokenID uint64) {
	t.all--
	if t.user[userID]--; t.user[userID] <= 0 {
		delete(t.user, userID)
	}
	if tokenID != 0 {
		if t.token[tokenID]--; t.token[tokenID] <= 0 {
			delete(t.token, tokenID)
		}
	}
}

// admitLocked counts st, a new stream, against MaxStreams and its
// principal's caps, or says which bound it is over. Server.mu is held.
func (s *Server) admitLocked(st *stream) error {
	m := &st.m
	switch {
	case m.TokenID != 0 && s.held.token[m.TokenID] >= s.cfg.MaxStreamsPerToken:
		return &wsError{code: proto.CodeTooManyStreams,
			message: "this API token holds as many live and resumable streams as it may: stop one, or wait until a dropped one is stored"}
	case s.held.user[m.UserID] >= s.cfg.MaxStreamsPerUser:
		return &wsError{code: proto.CodeTooManyStreams,
			message: "this account holds as many live and resumable streams as it may: stop one, or wait until a dropped one is stored"}
	case s.held.all >= s.cfg.MaxStreams:
		return policy(store.CodeUnavailable, "too many streams: try again later")
	}
	s.countLocked(st)
	return nil
}

// countLocked counts st without checking the bounds (a spool found after a
// restart is held whatever they are). Server.mu is held.
func (s *Server) countLocked(st *stream) {
	if st.counted {
		return
	}
	st.counted = true
	s.held.add(st.m.UserID, st.m.TokenID)
}

// releaseLocked stops counting st. Server.mu is held.
func (s *Server) releaseLocked(st *stream) {
	if !st.counted {
		return
	}
	st.counted = false
	s.held.remove(st.m.UserID, st.m.TokenID)
}

// Upgraded connections that have not started or resumed a stream hold a
// socket, a goroutine and buffers but no stream slot: they are counted
// apart, in all, per account and per API token, before the upgrade, and
// each must start within StartTimeout. A start moves a connection from
// these counts to the streams held.

// unstartedClaim is a connection's place in the counts of connections not
// yet streaming. Its fields are guarded by Server.mu.
type unstartedClaim struct {
	userID, tokenID uint64
	held            bool
}

// claimUnstarted counts a connection of p that is about to be upgraded, or
// says which bound it is over: rate_limited (429) for p's account or token,
// unavailable (503) for the server.
func (s *Server) claimUnstarted(p *store.Principal) (*unstartedClaim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return nil, &store.Error{Code: store.CodeUnavailable, Message: "server is shutting down"}
	case p.TokenID != 0 && s.unstarted.token[p.TokenID] >= s.cfg.MaxUnstartedPerToken:
		return nil, &store.Error{Code: store.CodeRateLimited,
			Message: "this API token has as many connections waiting to start a stream as it may: send start or resume on them, or close them"}
	case s.unstarted.user[p.UserID] >= s.cfg.MaxUnstartedPerUser:
		return nil, &store.Error{Code: store.CodeRateLimited,
			Message: "this account has as many connections waiting to start a stream as it may: send start or resume on them, or close them"}
	case s.unstarted.all >= s.cfg.MaxUnstarted:
		return nil, &store.Error{Code: store.CodeUnavailable, Message: "too many connections are waiting to start a stream: try again later"}
	}
	s.unstarted.add(p.UserID, p.TokenID)
	return &unstartedClaim{userID: p.UserID, tokenID: p.TokenID, held: true}, nil
}

// releaseUnstarted stops counting cl's connection; a second call does
// nothing.
func (s *Server) releaseUnstarted(cl *unstartedClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl == nil || !cl.held {
		return
	}
	cl.held = false
	s.unstarted.remove(cl.userID, cl.tokenID)
}

// Unstarted returns the number of upgraded connections that have not
// started or resumed a stream, for status pages and tests.
func (s *Server) Unstarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unstarted.all
}

// Conns returns the number of upgraded connections open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

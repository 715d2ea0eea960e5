package stream

import (
	"tyst/store"
	"tyst/stream/proto"
)

// Streams held (live, resumable or being stored) are counted in all, per
// user account and per API token, when a start claims its record: the
// check and the count are one step under Server.mu, so concurrent starts
// never pass a bound together, and a refused start creates no spool.

// admitLocked counts st, a new stream, against MaxStreams and its
// principal's caps, or says which bound it is over. Server.mu is held.
func (s *Server) admitLocked(st *stream) error {
	m := &st.m
	switch {
	case m.TokenID != 0 && s.perToken[m.TokenID] >= s.cfg.MaxStreamsPerToken:
		return &wsError{code: proto.CodeTooManyStreams,
			message: "this API token holds as many live and resumable streams as it may: stop one, or wait until a dropped one is stored"}
	case s.perUser[m.UserID] >= s.cfg.MaxStreamsPerUser:
		return &wsError{code: proto.CodeTooManyStreams,
			message: "this account holds as many live and resumable streams as it may: stop one, or wait until a dropped one is stored"}
	case s.held >= s.cfg.MaxStreams:
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
	s.held++
	s.perUser[st.m.UserID]++
	if st.m.TokenID != 0 {
		s.perToken[st.m.TokenID]++
	}
}

// releaseLocked stops counting st. Server.mu is held.
func (s *Server) releaseLocked(st *stream) {
	if !st.counted {
		return
	}
	st.counted = false
	s.held--
	if s.perUser[st.m.UserID]--; s.perUser[st.m.UserID] <= 0 {
		delete(s.perUser, st.m.UserID)
	}
	if st.m.TokenID != 0 {
		if s.perToken[st.m.TokenID]--; s.perToken[st.m.TokenID] <= 0 {
			delete(s.perToken, st.m.TokenID)
		}
	}
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
	case p.TokenID != 0 && s.unstartedToken[p.TokenID] >= s.cfg.MaxUnstartedPerToken:
		return nil, &store.Error{Code: store.CodeRateLimited,
			Message: "this API token has as many connections waiting to start a stream as it may: send start or resume on them, or close them"}
	case s.unstartedUser[p.UserID] >= s.cfg.MaxUnstartedPerUser:
		return nil, &store.Error{Code: store.CodeRateLimited,
			Message: "this account has as many connections waiting to start a stream as it may: send start or resume on them, or close them"}
	case s.unstarted >= s.cfg.MaxUnstarted:
		return nil, &store.Error{Code: store.CodeUnavailable, Message: "too many connections are waiting to start a stream: try again later"}
	}
	s.unstarted++
	s.unstartedUser[p.UserID]++
	if p.TokenID != 0 {
		s.unstartedToken[p.TokenID]++
	}
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
	s.unstarted--
	if s.unstartedUser[cl.userID]--; s.unstartedUser[cl.userID] <= 0 {
		delete(s.unstartedUser, cl.userID)
	}
	if cl.tokenID != 0 {
		if s.unstartedToken[cl.tokenID]--; s.unstartedToken[cl.tokenID] <= 0 {
			delete(s.unstartedToken, cl.tokenID)
		}
	}
}

// Unstarted returns the number of upgraded connections that have not
// started or resumed a stream, for status pages and tests.
func (s *Server) Unstarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unstarted
}

// Conns returns the number of upgraded connections open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

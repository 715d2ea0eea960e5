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

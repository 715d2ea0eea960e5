package api

import (
	"net/http"

	"tyst/store"
)

// statuses is the one place that maps error codes to HTTP statuses (DESIGN §5).
var statuses = map[store.Code]int{
	store.CodeValidation:          http.StatusBadRequest,
	store.CodeUnauthorized:        http.StatusUnauthorized,
	store.CodeForbidden:           http.StatusForbidden,
	store.CodeNotFound:            http.StatusNotFound,
	store.CodeConflict:            http.StatusConflict,
	store.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	store.CodeUnsupported:         http.StatusUnsupportedMediaType,
	store.CodeRangeNotSatisfiable: http.StatusRequestedRangeNotSatisfiable,
	store.CodeRateLimited:         http.StatusTooManyRequests,
	store.CodeInternal:            http.StatusInternalServerError,
	store.CodeUnavailable:         http.StatusServiceUnavailable,
	store.CodeDiskFull:            http.StatusInsufficientStorage,
	store.CodeQuotaExceeded:       http.StatusInsufficientStorage,
}

// statusOf returns the HTTP status for err's code.
func statusOf(err error) int {
	if s, ok := statuses[store.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      store.Code `json:"code"`
	Message   string     `json:"message"`
	RequestID string     `json:"request_id"`
}

// writeError answers err as the JSON error of DESIGN §5. Server-side errors
// are logged once, here, with the route pattern and request id and the
// path-free cause; the client gets the code and a safe message only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, route string, err error) {
	code := store.ErrorCode(err)
	status := statusOf(err)
	msg := store.ErrorMessage(err)
	switch {
	case code == store.CodeQuotaExceeded:
		// The account's own condition, not the server's: not an error to
		// alert on, and its message gives the account's package sizes.
		s.log.Warn("request refused", keyRoute, route, keyRequestID, requestID(r.Context()), keyCode, string(code))
	case code == store.CodeUnavailable && r.Context().Err() != nil:
		// The client went away (or the server is stopping): nothing for
		// an operator to act on.
		s.log.Info("request abandoned", keyRoute, route, keyRequestID, requestID(r.Context()), keyCode, string(code))
	case status >= 500:
		s.log.Error("request failed", keyRoute, route, keyRequestID, requestID(r.Context()), keyCode, string(code), keyErr, err.Error())
		if code == store.CodeInternal {
			msg = "internal error"
		}
	}
	if r.ContentLength != 0 && r.ProtoMajor == 1 {
		// The body may be unread. Without this the server would wait to
		// drain it before answering, and a client that stalls its body
		// would hold the connection. (HTTP/2 resets the one stream; there
		// "Connection: close" would end every other stream of the client.)
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, RequestID: requestID(r.Context())}})
}

// apiError builds a client error that api detects itself.
func apiError(code store.Code, msg string) error {
	return &store.Error{Code: code, Message: msg}
}

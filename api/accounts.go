package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
)

type userResponse struct {
	UserID      uint64 `json:"user_id"`
	Username    string `json:"username"`
	Role        string `json:"role"`
	Disabled    bool   `json:"disabled"`
	TOTPEnabled bool   `json:"totp_enabled"`
	CreatedAt   string `json:"created_at"`
	Unreadable  bool   `json:"unreadable,omitempty"`
}

func newUserResponse(u *store.User) userResponse {
	return userResponse{UserID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.Disabled, TOTPEnabled: u.TOTPEnabled, CreatedAt: timeString(u.CreatedAt), Unreadable: u.Unreadable}
}

type setupStateResponse struct {
	Needed bool `json:"needed"`
}

type setupRequest struct {
	Token    string `json:"token"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp"`
}

type meResponse struct {
	userResponse
	Scope     string `json:"scope,omitempty"`
	NeedsTOTP bool   `json:"needs_totp"`
}

type userCreateRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type userUpdateRequest struct {
	Role      *string `json:"role"`
	Password  *string `json:"password"`
	Disabled  *bool   `json:"disabled"`
	ResetTOTP bool    `json:"reset_totp"`
}

type userUpdateResponse struct {
	userResponse
	TokensRevoked int `json:"tokens_revoked"`
}

type userListResponse struct {
	Users []userResponse `json:"users"`
}

type tokenCreateRequest struct {
	Username string `json:"username"`
	Scope    string `json:"scope"`
	Label    string `json:"label"`
}

type tokenResponse struct {
	TokenID    uint64 `json:"token_id"`
	Token      string `json:"token,omitempty"` // only in the answer to POST
	UserID     uint64 `json:"user_id"`
	Scope      string `json:"scope"`
	Label      string `json:"label"`
	CreatedAt  string `json:"created_at,omitempty"`
	Unreadable bool   `json:"unreadable,omitempty"`
}

type tokenListResponse struct {
	Tokens []tokenResponse `json:"tokens"`
}

type totpBeginRequest struct {
	Password string `json:"password"`
}

type totpBeginResponse struct {
	OTPAuthURI string `json:"otpauth_uri"`
}

type totpConfirmRequest struct {
	Code string `json:"code"`
}

type totpConfirmResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type settingsBody struct {
	RequireAdminTOTP *bool `json:"require_admin_totp"`
}

func (s *Server) handleSetupState(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	has, err := s.accounts.HasUsers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, setupStateResponse{Needed: !has})
}

// handleSetup creates the first admin with the one-time setup token. While
// setup is open, each attempt counts against the client's login limit, so
// nobody can hammer the (long, random) token; a wrong token is a failure.
// Once setup is closed the limiter is not touched at all: the answer is 403
// whatever the token, and refused attempts must not lock every client
// behind one address out of logging in.
func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req setupRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	closed, err := s.accounts.HasUsers(r.Context())
	if err != nil {
		return err
	}
	client := s.clientKey(r)
	if !closed && !s.clientLimit.take(client) {
		return apiError(store.CodeRateLimited, "too many failed attempts: wait 15 minutes")
	}
	u, err := s.accounts.CompleteSetup(r.Context(), req.Token, store.NewUser{Username: req.Username, Password: req.Password})
	if !closed && store.ErrorCode(err) != store.CodeUnauthorized {
		s.clientLimit.refund(client) // closed meanwhile, or a bad username: no guess
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, newUserResponse(u))
}

// handleLogin checks the rate limits before the password, so a blocked
// username or client learns nothing, and counts every failure.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req loginRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	userKey := "user:" + strings.ToLower(strings.TrimSpace(req.Username))
	client := s.clientKey(r)
	// The client first: a blocked client adds nothing to the table.
	if !s.clientLimit.take(client) {
		return apiError(store.CodeRateLimited, "too many failed logins: wait 15 minutes")
	}
	// A browser this user has logged in from, with the credentials in force
	// now, is counted on its own, so failures from elsewhere do not lock the
	// user out of it (see devices). The stamp is read before the password
	// is checked, so a cookie issued below is never bound to credentials
	// newer than the ones this login proved; without a genuine cookie, only
	// once the limits let the attempt go ahead.
	stampOf := func() []byte { return s.credentialStamp(r.Context(), req.Username) }
	limit, limitKey := s.userLimit, userKey
	dev, stamp := s.devices.known(r, userKey, stampOf)
	if dev != "" {
		limit, limitKey = s.deviceLimit, dev
	}
	if !limit.take(limitKey) {
		s.clientLimit.refund(client)
		return apiError(store.CodeRateLimited, "too many failed logins: wait 15 minutes")
	}
	if stamp == nil {
		stamp = stampOf()
	}
	secret, u, err := s.accounts.Login(r.Context(), req.Username, req.Password, req.TOTP)
	failed := store.ErrorCode(err) == store.CodeUnauthorized && !errors.Is(err, store.ErrSecondFactorRequired)
	if !failed {
		s.clientLimit.refund(client)
		limit.refund(limitKey)
	}
	if err != nil {
		return err
	}
	limit.reset(limitKey)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(s.sessionTTL / time.Second),
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteStrictMode,
	})
	if limit == s.userLimit && stamp != nil {
		s.devices.issue(w, userKey, stamp, s.secureCookies)
	}
	return writeJSON(w, http.StatusOK, newUserResponse(u))
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.accounts.Logout(r.Context()); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p := store.PrincipalFrom(r.Context())
	u, err := s.accounts.User(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, meResponse{userResponse: newUserResponse(u), Scope: p.Scope, NeedsTOTP: p.NeedsTOTP})
}

func (s *Server) handleTOTPBegin(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req totpBeginRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	uri, err := s.accounts.BeginTOTP(r.Context(), "tyst", req.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, totpBeginResponse{OTPAuthURI: uri})
}

func (s *Server) handleTOTPConfirm(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req totpConfirmRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	codes, err := s.accounts.ConfirmTOTP(r.Context(), req.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, totpConfirmResponse{RecoveryCodes: codes})
}

func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	us, err := s.accounts.Users(r.Context())
	if err != nil {
		return err
	}
	resp := userListResponse{Users: make([]userResponse, 0, len(us))}
	for _, u := range us {
		resp.Users = append(resp.Users, newUserResponse(u))
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req userCreateRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.accounts.CreateUser(r.Context(), store.NewUser{Username: req.Username, Password: req.Password, Role: req.Role})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, newUserResponse(u))
}

func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req userUpdateRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.accounts.UpdateUser(r.Context(), id, store.UserUpdate{Role: req.Role, Password: req.Password, Disabled: req.Disabled, ResetTOTP: req.ResetTOTP})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userUpdateResponse{userResponse: newUserResponse(res.User), TokensRevoked: res.TokensRevoked})
}

func newTokenResponse(t *store.Token, secret string) tokenResponse {
	if t.Unreadable {
		return tokenResponse{TokenID: t.ID, Unreadable: true}
	}
	return tokenResponse{TokenID: t.ID, Token: secret, UserID: t.UserID, Scope: t.Scope, Label: t.Label, CreatedAt: timeString(t.CreatedAt)}
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ts, err := s.accounts.Tokens(r.Context())
	if err != nil {
		return err
	}
	resp := tokenListResponse{Tokens: make([]tokenResponse, 0, len(ts))}
	for _, t := range ts {
		resp.Tokens = append(resp.Tokens, newTokenResponse(t, ""))
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req tokenCreateRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	secret, t, err := s.accounts.CreateToken(r.Context(), req.Username, req.Scope, req.Label)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, newTokenResponse(t, secret))
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleSettingsGet(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	st, err := s.accounts.Settings(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, settingsBody{RequireAdminTOTP: &st.RequireAdminTOTP})
}

func (s *Server) handleSettingsUpdate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req settingsBody
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.RequireAdminTOTP == nil {
		return apiError(store.CodeValidation, "require_admin_totp is required")
	}
	if err := s.accounts.UpdateSettings(r.Context(), store.Settings{RequireAdminTOTP: *req.RequireAdminTOTP}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, req)
}

package api

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openAPIDoc is the hand-written OpenAPI 3.1 document of every route in
// registerRoutes; TestOpenAPI_Routes keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// handleOpenAPI serves openAPIDoc as it is.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDoc)
	return nil
}

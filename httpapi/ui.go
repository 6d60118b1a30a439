package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/betasync/betasync"
)

// The console (/ui) is a page shell rendered from a template, plus one
// script and one style sheet, all compiled into the binary. The shell holds
// no data: the script asks the API for everything, with the key the user
// typed, sent in a header. So the page can reach nothing that curl cannot.

//go:embed ui
var uiFiles embed.FS

// uiPage is the console's shell.
var uiPage = template.Must(template.ParseFS(uiFiles, "ui/console.html.tmpl"))

// uiAssets are the files under /ui/static/, by name.
var uiAssets = map[string]string{
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
}

// uiVersion is a digest of the assets: the shell links them with ?v=uiVersion,
// so a new binary is never served a stale script from a cache.
var uiVersion = func() string {
	h := sha256.New()
	for _, name := range []string{"console.js", "console.css"} {
		b, err := fs.ReadFile(uiFiles, "ui/"+name)
		if err != nil {
			panic("httpapi: the console asset " + name + " is missing: " + err.Error())
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// uiCSP allows only the binary's own script, style and API: no inline
// script or style, no framing, no form posting anywhere else.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// uiRoutes adds the console and the two small endpoints it needs beyond the
// API that existed before it (whoami and filter, both viewer routes).
func (s *server) uiRoutes(auth func(string, http.Handler) http.Handler) {
	r := s.router
	r.Handle("/ui", uiHeaders(s.handleUIPage())).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/ui/", uiHeaders(http.RedirectHandler("/ui", http.StatusMovedPermanently))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/ui/static/{file}", uiHeaders(s.handleUIAsset())).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/anthropic_beta_headers/whoami", auth(RoleViewer, s.handleWhoami())).Methods(http.MethodGet)
	r.Handle("/anthropic_beta_headers/filter", auth(RoleViewer, s.handleFilter())).Methods(http.MethodGet)
}

// uiHeaders sets the console's security headers.
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (s *server) handleUIPage() http.Handler {
	data := struct{ AssetVersion string }{uiVersion}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := uiPage.Execute(w, data); err != nil {
			s.log.Error("rendering the console", "err", err)
		}
	})
}

func (s *server) handleUIAsset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["file"]
		ctype, ok := uiAssets[name]
		if !ok {
			writeError(w, r, s.log, betasync.Errorf(betasync.ENOTFOUND, "no such console file: %s", clip(name, clipLen)), "")
			return
		}
		b, err := fs.ReadFile(uiFiles, "ui/"+name)
		if err != nil {
			writeError(w, r, s.log, err, "")
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"`+uiVersion+`"`)
		if r.Header.Get("If-None-Match") == `"`+uiVersion+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(b)
	})
}

// WhoamiResponse answers GET /anthropic_beta_headers/whoami: the name and
// role of the key that asked (never the key).
type WhoamiResponse struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (s *server) handleWhoami() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := token(r)
		key, ok := s.cfg.Keys.authenticate(tok) // s.auth admitted it
		if !ok {
			writeError(w, r, s.log, betasync.Errorf(betasync.EUNAUTHORIZED, "invalid API key"), "")
			return
		}
		writeJSON(w, http.StatusOK, WhoamiResponse{Name: key.Name, Role: key.Role})
	})
}

// FilterResponse answers GET /anthropic_beta_headers/filter: what a pod
// serving this replica's version sends to provider for the given
// anthropic-beta value, computed by the pods' own code (Mapping.Betas).
type FilterResponse struct {
	Provider string   `json:"provider"` // as asked
	Section  string   `json:"section"`  // after provider_aliases; "" when the provider has no section
	Known    bool     `json:"known"`    // the provider has a section (false: nothing is sent, fail-closed)
	Items    []Item   `json:"items"`    // every item of the value, in order, with what became of it
	Sent     []string `json:"sent"`     // the betas sent, sorted and de-duplicated; [] when none
	Header   *string  `json:"header"`   // the anthropic-beta value sent; null: the header is removed
	Version  uint64   `json:"version"`  // the version the answer comes from
	Hash     string   `json:"hash"`
}

// Item is one beta of the value asked about.
type Item struct {
	Beta   string  `json:"beta"`
	Result string  `json:"result"` // forwarded, renamed, unsupported (null) or absent
	Name   *string `json:"name"`   // the name sent; null when dropped
}

// Results of a filtered item.
const (
	ResultForwarded   = "forwarded"
	ResultRenamed     = "renamed"
	ResultUnsupported = "unsupported"
	ResultAbsent      = "absent"
)

// handleFilter takes the provider from ?provider= and the value from every
// anthropic-beta header line of the request and every ?value= (merged, as
// repeated header lines are).
func (s *server) handleFilter() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		provider := strings.TrimSpace(q.Get("provider"))
		if provider == "" {
			writeError(w, r, s.log, betasync.Errorf(betasync.EUNPROCESSABLE, "provider is required: ?provider=bedrock"), "provider")
			return
		}
		values := append(r.Header.Values(betasync.HeaderName), q["value"]...)
		cur := s.cfg.Mapping.Current()
		res := FilterResponse{Provider: provider, Items: []Item{}, Version: cur.Version, Hash: cur.Hash()}
		section, known := cur.Section(provider)
		res.Known = known
		if known {
			res.Section = cur.Resolve(provider)
		}
		for _, v := range values {
			for item := range strings.SplitSeq(v, ",") {
				beta := strings.TrimSpace(item)
				if beta == "" {
					continue
				}
				res.Items = append(res.Items, describeItem(section, beta))
			}
		}
		res.Sent = cur.Betas(provider, values...)
		if res.Sent == nil {
			res.Sent = []string{}
		}
		if len(res.Sent) > 0 {
			res.Header = new(strings.Join(res.Sent, ","))
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// describeItem says what section does with beta. It explains the answer;
// the answer itself (Sent, Header) comes from Mapping.Betas.
func describeItem(section map[string]*string, beta string) Item {
	name, ok := section[beta]
	switch {
	case !ok:
		return Item{Beta: beta, Result: ResultAbsent}
	case name == nil:
		return Item{Beta: beta, Result: ResultUnsupported}
	case *name == beta:
		return Item{Beta: beta, Result: ResultForwarded, Name: name}
	default:
		return Item{Beta: beta, Result: ResultRenamed, Name: name}
	}
}

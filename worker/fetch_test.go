package worker_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/kv"
	"github.com/betasync/betasync/worker"
)

// blockUntilGone waits until the client goes away (or a bound passes, so a
// test never hangs on a handler).
func blockUntilGone(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// redirects answers /r/N with a redirect to /r/N-1 and /r/0 with doc.
func redirects(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if err != nil || n <= 0 {
			serve(doc)(w, r)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), http.StatusFound)
	}
}

func TestReloadUpstreamFaults(t *testing.T) {
	const fetchTimeout = 200 * time.Millisecond
	tests := []struct {
		name    string
		handler http.HandlerFunc
		path    string
		wants   []string // substrings of the error message
	}{
		{name: "status 500", handler: status(http.StatusInternalServerError), wants: []string{"status 500"}},
		{name: "status 404", handler: status(http.StatusNotFound), wants: []string{"status 404"}},
		{
			name: "timeout before headers",
			handler: func(_ http.ResponseWriter, r *http.Request) {
				blockUntilGone(r)
			},
			wants: []string{"timed out"},
		},
		{
			name: "slow body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("{"))
				rc := http.NewResponseController(w)
				_ = rc.Flush()
				for {
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := w.Write([]byte(" ")); err != nil {
						return
					}
					if rc.Flush() != nil {
						return
					}
				}
			},
			wants: []string{"reading the body", "timed out"},
		},
		{
			name: "10 MiB body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				chunk := bytes.Repeat([]byte(" "), 64<<10)
				for range 10 << 20 / len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			wants: []string{"larger than 1048576 bytes"},
		},
		{
			name:    "HTML",
			handler: serve([]byte("<!DOCTYPE html><html><body>rate limited</body></html>")),
			wants:   []string{"not a valid mapping", "not valid JSON"},
		},
		{
			name:    "wrong types",
			handler: serve([]byte(`{"anthropic": {"x": 1}}`)),
			wants:   []string{"not a valid mapping", `provider "anthropic"`, `beta "x"`, "string or null"},
		},
		{
			name:    "provider not an object",
			handler: serve([]byte(`{"anthropic": ["context-1m-2025-08-07"]}`)),
			wants:   []string{`provider "anthropic"`, "JSON object"},
		},
		{
			name:    "empty object",
			handler: serve([]byte(`{}`)),
			wants:   []string{"no core provider"},
		},
		{
			name:    "no core provider",
			handler: serve([]byte(`{"databricks": {"context-1m-2025-08-07": "context-1m-2025-08-07"}}`)),
			wants:   []string{"no core provider"},
		},
		{
			name:    "more than 3 redirects",
			handler: redirects(docSmall),
			path:    "/r/4",
			wants:   []string{"more than 3 redirects"},
		},
		{
			name: "redirect to another scheme",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "ftp://example.invalid/mapping.json", http.StatusFound)
			},
			wants: []string{"redirect to a ftp URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			good := newUpstream(t, serve(docUpstream))
			bad := newUpstream(t, tt.handler)
			clk := newClock()
			ctx := t.Context()

			// The last good version, from a healthy source.
			seed := newWorker(t, n, worker.Config{ReplicaID: "seed", URL: good.URL, Now: clk.Now})
			first, err := seed.Reload(ctx)
			require.NoError(t, err)

			clk.Advance(time.Minute)
			w := newWorker(t, n, worker.Config{URL: bad.URL + tt.path, FetchTimeout: fetchTimeout, Now: clk.Now})
			_, reloadErr := w.Reload(ctx)
			requireCode(t, reloadErr, betasync.EUPSTREAM, tt.wants...)
			wantHits := 1
			if tt.path != "" {
				wantHits = 4 // three redirects followed, the fourth refused
			}
			assert.Equal(t, wantHits, bad.Hits())

			latest, err := n.Store.Mappings.Latest(ctx)
			require.NoError(t, err)
			assert.Equal(t, first.Version, latest.Version, "the last good version stays")
			assert.Equal(t, first.Hash, latest.Hash())

			st, err := w.Status(ctx)
			require.NoError(t, err)
			if assert.NotNil(t, st.LastError) {
				assert.Equal(t, betasync.ErrorMessage(reloadErr), st.LastError.Message)
				assert.Equal(t, t0.Add(time.Minute), st.LastError.Time)
			}
			if assert.NotNil(t, st.LastSuccess) {
				assert.Equal(t, t0, *st.LastSuccess, "a failure is not reported as a success")
			}
			assert.Equal(t, first.Version, st.ConfigVersion)
		})
	}
}

func TestReloadFollowsUpToThreeRedirects(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, redirects(docSmall))
	w := newWorker(t, n, worker.Config{URL: up.URL + "/r/3"})
	res, err := w.Reload(t.Context())
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, hashOf(t, docSmall), res.Hash)
	assert.Equal(t, 4, up.Hits())
}

func TestReloadConditional(t *testing.T) {
	tests := []struct {
		name string
		// validator is the response header naming the version; condition
		// is the request header that must echo it.
		validator, value, condition string
	}{
		{name: "ETag", validator: "ETag", value: `"v1-abc"`, condition: "If-None-Match"},
		{name: "Last-Modified", validator: "Last-Modified", value: "Sun, 01 Mar 2026 10:00:00 GMT", condition: "If-Modified-Since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			n := connect(t, srv)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get(tt.condition) == tt.value {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Header().Set(tt.validator, tt.value)
				serve(docUpstream)(w, r)
			})
			w := newWorker(t, n, worker.Config{URL: up.URL})
			events := subscribe(t, srv)
			ctx := t.Context()

			first, err := w.Reload(ctx)
			require.NoError(t, err)
			require.True(t, first.Changed)
			assert.Empty(t, up.LastHeader().Get("If-None-Match"), "the first fetch is unconditional")
			assert.Empty(t, up.LastHeader().Get("If-Modified-Since"))
			latest, err := n.Store.Mappings.Latest(ctx)
			require.NoError(t, err)
			if tt.validator == "ETag" {
				assert.Equal(t, tt.value, latest.ETag)
				assert.Empty(t, latest.LastModified)
			} else {
				assert.Equal(t, tt.value, latest.LastModified)
				assert.Empty(t, latest.ETag)
			}
			assert.Equal(t, first.Version, events.Next(t).Version)

			second, err := w.Reload(ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.value, up.LastHeader().Get(tt.condition), "the second fetch is conditional")
			assert.False(t, second.Changed, "304: not changed")
			assert.Equal(t, first.Version, second.Version, "304: no new version")
			assert.Equal(t, first.Hash, second.Hash)
			assert.Equal(t, 7, second.ProvidersCount)
			assert.Equal(t, 2, up.Hits())

			latest, err = n.Store.Mappings.Latest(ctx)
			require.NoError(t, err)
			assert.Equal(t, first.Version, latest.Version)
			assert.Equal(t, tt.value, latest.ETag+latest.LastModified, "the validator is kept")
			assert.Zero(t, events.Pending(t), "nothing announced for a 304")
		})
	}
}

func TestReloadConditionalOnlyForTheSameURL(t *testing.T) {
	srv := natstest.Start(t)
	n := connect(t, srv)
	etagged := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"same"`)
		serve(docUpstream)(w, r)
	}
	a := newUpstream(t, etagged)
	b := newUpstream(t, etagged)
	ctx := t.Context()

	_, err := newWorker(t, n, worker.Config{URL: a.URL}).Reload(ctx)
	require.NoError(t, err)
	_, err = newWorker(t, n, worker.Config{URL: b.URL}).Reload(ctx)
	require.NoError(t, err)
	assert.Empty(t, b.LastHeader().Get("If-None-Match"), "another URL's ETag means nothing here")
}

// TestReloadOverTamperedEntryWithTheRealETag reproduces the outside test: a
// stored envelope with broken content but the upstream's real ETag made
// every reload answer "unchanged" (a 304). The worker validates the stored
// version before it sends the ETag, and replaces it with a full fetch.
func TestReloadOverTamperedEntryWithTheRealETag(t *testing.T) {
	const etag = `"v1-abc"`
	srv := natstest.Start(t)
	n := connect(t, srv)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		serve(docUpstream)(w, r)
	})
	w := newWorker(t, n, worker.Config{URL: up.URL})
	ctx := t.Context()
	first, err := w.Reload(ctx)
	require.NoError(t, err)

	js, err := jetstream.New(n.NC)
	require.NoError(t, err)
	bucket, err := js.KeyValue(ctx, kv.BucketConfig)
	require.NoError(t, err)
	tampered := fmt.Sprintf(`{"hash":%q,"source":"remote","fetched_at":"2026-03-01T12:00:00Z","url":%q,"etag":%q,"config":{"anthropic":{"x":1}}}`,
		first.Hash, up.URL, etag)
	_, err = bucket.Put(ctx, kv.KeyMapping, []byte(tampered))
	require.NoError(t, err)

	res, err := w.Reload(ctx)
	require.NoError(t, err)
	assert.True(t, res.Changed, "the tampered entry is replaced, not kept as unchanged")
	assert.Empty(t, up.LastHeader().Get("If-None-Match"), "no ETag is sent for a version that does not validate")
	latest, err := n.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, first.Hash, latest.Hash())
	assert.Equal(t, res.Version, latest.Version)
}

// TestReloadWithAStaleKnownVersion: the fetch runs while KV is read, with
// the validators of the version this replica last saw. When another
// replica has stored a newer version meanwhile, a "not modified" to the
// stale validators says nothing about the stored version: the worker
// fetches again with the stored version's validators.
func TestReloadWithAStaleKnownVersion(t *testing.T) {
	srv := natstest.Start(t)
	var current atomic.Pointer[string] // the upstream's document: "x" or "y"
	docs := map[string][]byte{"x": docUpstream, "y": docOther}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		name := *current.Load()
		etag := `"` + name + `"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		serve(docs[name])(w, r)
	})
	set := func(name string) { current.Store(&name) }
	a := newWorker(t, connect(t, srv), worker.Config{URL: up.URL, ReplicaID: "a"})
	b := newWorker(t, connect(t, srv), worker.Config{URL: up.URL, ReplicaID: "b"})
	ctx := t.Context()

	set("x")
	_, err := a.Reload(ctx) // a knows x
	require.NoError(t, err)
	set("y")
	_, err = b.Reload(ctx) // KV holds y; a still knows x
	require.NoError(t, err)
	set("x")
	hits := up.Hits()
	res, err := a.Reload(ctx)
	require.NoError(t, err)
	assert.True(t, res.Changed, "x is stored again over y, not taken for unchanged")
	assert.Equal(t, hashOf(t, docUpstream), res.Hash)
	assert.Equal(t, hits+2, up.Hits(), "a conditional fetch with x's ETag (304), then one with y's")
	assert.Equal(t, `"y"`, up.LastHeader().Get("If-None-Match"))
	stored := connect(t, srv)
	latest, err := stored.Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, hashOf(t, docUpstream), latest.Hash())
}

// TestSpeculativeFetchNeverOverwritesANewerVersion: replica a's fetch runs
// while it reads KV. Here a's KV read is held up (its connection paused)
// until replica b, which reloaded after a's fetch began, has stored a newer
// document; then a's fetch answers with the older one. KV no longer holds
// the version a last saw, so a drops that answer and fetches again after
// its read: the newer version stays, and a stores nothing.
func TestSpeculativeFetchNeverOverwritesANewerVersion(t *testing.T) {
	srv := natstest.Start(t)
	p := newProxy(t, srv.Listen())
	ctx := t.Context()
	var held atomic.Bool // the next request is held until release, then answered with docUpstream
	entered, release := make(chan struct{}), make(chan struct{})
	current := docOther
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if held.CompareAndSwap(true, false) {
			close(entered)
			<-release
			serve(docUpstream)(w, r)
			return
		}
		serve(current)(w, r)
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	a := newWorker(t, connectVia(t, p.Addr()), worker.Config{ReplicaID: "a", URL: up.URL})
	b := newWorker(t, connect(t, srv), worker.Config{ReplicaID: "b", URL: up.URL})

	first, err := a.Reload(ctx) // a has seen version 1 (docOther)
	require.NoError(t, err)
	current = docSmall // what any later, unheld request gets: the newest document
	held.Store(true)
	p.Pause() // a's KV read waits
	done := make(chan betasync.ReloadResult, 1)
	go func() {
		res, err := a.Reload(ctx)
		assert.NoError(t, err)
		done <- res
	}()
	<-entered // a's fetch has begun, and is held
	stored, err := b.Reload(ctx)
	require.NoError(t, err)
	require.True(t, stored.Changed)
	require.Greater(t, stored.Version, first.Version)
	p.Resume()    // a's read returns b's version
	releaseOnce() // a's fetch answers with the older document
	res := <-done
	assert.False(t, res.Changed, "a's older fetch is not stored over b's newer version")
	assert.Equal(t, stored.Version, res.Version)
	latest, err := connect(t, srv).Store.Mappings.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, hashOf(t, docSmall), latest.Hash())
	assert.Equal(t, stored.Version, latest.Version)
}

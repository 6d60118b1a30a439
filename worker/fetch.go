package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/betasync/betasync"
)

// maxRedirects is how many redirects a fetch follows.
const maxRedirects = 3

// fetched is one answer from the mapping source.
type fetched struct {
	notModified  bool
	body         []byte
	etag         string
	lastModified string
}

// fetcher gets the mapping document over HTTP: http/https only, a timeout
// covering the whole exchange (a slow body included), a size cap, at most
// maxRedirects redirects, and conditional requests.
type fetcher struct {
	client  *http.Client
	url     string
	ua      string
	timeout time.Duration
}

// checkURL accepts absolute http and https URLs only.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("mapping URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("mapping URL %q: must be an absolute http or https URL", raw)
	}
	return nil
}

func newFetcher(rawURL, userAgent string, timeout time.Duration) *fetcher {
	client := &http.Client{
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}
	return &fetcher{client: client, url: rawURL, ua: userAgent, timeout: timeout}
}

// checkRedirect follows at most maxRedirects redirects, to http or https
// only, and never from https down to http.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to http")
	}
	return nil
}

// fetch GETs the document. etag and lastModified, when set, make the request
// conditional. Every failure is an EUPSTREAM error naming the cause.
func (f *fetcher) fetch(ctx context.Context, etag, lastModified string) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fetched{}, betasync.Errorf(betasync.EUPSTREAM, "fetching %s: %v", f.url, err)
	}
	req.Header.Set("User-Agent", f.ua)
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fetched{}, betasync.Errorf(betasync.EUPSTREAM, "fetching %s: %v", f.url, f.cause(ctx, err))
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return fetched{notModified: true, etag: etag, lastModified: lastModified}, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fetched{}, betasync.Errorf(betasync.EUPSTREAM, "fetching %s: status %s", f.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, betasync.MaxConfigSize+1))
	if err != nil {
		return fetched{}, betasync.Errorf(betasync.EUPSTREAM, "fetching %s: reading the body: %v", f.url, f.cause(ctx, err))
	}
	if len(body) > betasync.MaxConfigSize {
		return fetched{}, betasync.Errorf(betasync.EUPSTREAM, "fetching %s: the document is larger than %d bytes", f.url, betasync.MaxConfigSize)
	}
	return fetched{body: body, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// cause names why a fetch failed: the caller gave up; "timed out after
// ..." for the fetch timeout, whether waiting for the headers or reading the
// body; otherwise the error without *url.Error's "Get URL:" prefix, which
// our messages already carry.
func (f *fetcher) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("abandoned: %w", ctx.Err())
	}
	if te, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err); ok && te.Timeout() {
		return fmt.Errorf("timed out after %s", f.timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

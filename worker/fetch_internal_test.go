package worker

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckRedirect(t *testing.T) {
	req := func(url string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	https, http1 := req("https://a.example/x"), req("http://a.example/x")
	tests := []struct {
		name string
		to   *http.Request
		via  []*http.Request
		want string // "" to follow
	}{
		{"https to https", req("https://b.example/y"), []*http.Request{https}, ""},
		{"http to https", req("https://b.example/y"), []*http.Request{http1}, ""},
		{"http to http", req("http://b.example/y"), []*http.Request{http1}, ""},
		{"https down to http", req("http://b.example/y"), []*http.Request{https}, "redirect from https to http"},
		{"to another scheme", req("ftp://b.example/y"), []*http.Request{http1}, "redirect to a ftp URL"},
		{"the third redirect", https, []*http.Request{https, https, https}, ""},
		{"a fourth redirect", https, []*http.Request{https, https, https, https}, "more than 3 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRedirect(tt.to, tt.via)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.want)
		})
	}
}

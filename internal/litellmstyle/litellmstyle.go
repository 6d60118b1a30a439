// Package litellmstyle is the benchmarks' baseline: a direct transcription
// of LiteLLM's anthropic-beta filter (split, strip, look up the section as
// written, skip null, collect in a set, sort), over betasync's data.
package litellmstyle

import (
	"slices"
	"strings"
)

// Filter returns, in out, the names LiteLLM's filter sends for header with
// section (beta -> name, nil for unsupported).
func Filter(section map[string]*string, header string, out []string) []string {
	set := map[string]struct{}{}
	for _, item := range strings.Split(header, ",") { //nolint:modernize // Python's split builds the list too
		item = strings.TrimSpace(item)
		if name, ok := section[item]; ok && name != nil {
			set[*name] = struct{}{}
		}
	}
	out = out[:0]
	for name := range set {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

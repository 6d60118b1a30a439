package betasync_test

import (
	"fmt"
	"net/http"

	"github.com/betasync/betasync"
)

func ExampleMapping_HeaderValue() {
	m := betasync.Default()

	// What Claude Code sends, filtered for Bedrock: claude-code is unknown
	// there, interleaved-thinking is unsupported, advanced-tool-use is
	// renamed, and the result is sorted.
	const sent = "claude-code-20250219,interleaved-thinking-2025-05-14,context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,advanced-tool-use-2025-11-20"
	fmt.Println(m.HeaderValue("bedrock", sent))
	fmt.Println(m.HeaderValue("vertex_ai", sent))
	fmt.Printf("%q\n", m.HeaderValue("bedrock", "interleaved-thinking-2025-05-14"))
	// Output:
	// context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,tool-search-tool-2025-10-19
	// context-1m-2025-08-07,interleaved-thinking-2025-05-14,tool-search-tool-2025-10-19
	// ""
}

func ExampleMapping_FilterHeader() {
	m := betasync.Default()

	h := http.Header{}
	h.Add("Anthropic-Beta", "effort-2025-11-24, context-1m-2025-08-07")
	h.Add("Anthropic-Beta", "files-api-2025-04-14,,context-1m-2025-08-07")

	betas := m.FilterHeader(h, "bedrock_converse")
	fmt.Println(betas)
	fmt.Println(h.Values("Anthropic-Beta"))

	h.Set("Anthropic-Beta", "files-api-2025-04-14")
	m.FilterHeader(h, "bedrock_converse")
	_, present := h["Anthropic-Beta"]
	fmt.Println(present)
	// Output:
	// [context-1m-2025-08-07 effort-2025-11-24]
	// [context-1m-2025-08-07,effort-2025-11-24]
	// false
}

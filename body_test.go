package betasync_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/betasync/betasync"
)

// Realistic request bodies, one per API shape. Each prompt holds HTML
// metacharacters that must survive re-encoding unescaped.
const (
	bedrockInvokeBody = `{
  "anthropic_version": "bedrock-2023-05-31",
  "max_tokens": 1024,
  "system": "You are terse.",
  "temperature": 1.50,
  "messages": [
    {"role": "user", "content": [{"type": "text", "text": "What does <b>&</b> render as? caf\u00e9"}]}
  ]
}`

	bedrockConverseBody = `{
  "messages": [
    {"role": "user", "content": [{"text": "What does <b>&</b> render as?"}]},
    {"role": "assistant", "content": [{"text": "An ampersand in bold."}]},
    {"role": "user", "content": [{"text": "Thanks"}]}
  ],
  "system": [{"text": "You are terse."}],
  "inferenceConfig": {"maxTokens": 1024, "temperature": 0.2, "stopSequences": ["\n\nHuman:"]},
  "additionalModelRequestFields": {"top_k": 200}
}`

	vertexBody = `{
  "anthropic_version": "vertex-2023-10-16",
  "max_tokens": 1024,
  "stream": true,
  "messages": [{"role": "user", "content": "What does <b>&</b> render as?"}]
}`

	anthropicBody = `{
  "model": "claude-sonnet-4-5",
  "max_tokens": 1024,
  "messages": [{"role": "user", "content": "What does <b>&</b> render as?"}]
}`
)

// bedrockConverseBare is bedrockConverseBody without
// additionalModelRequestFields.
var bedrockConverseBare = strings.Replace(bedrockConverseBody, ",\n  \"additionalModelRequestFields\": {\"top_k\": 200}", "", 1)

// withField returns a JSON object body with extra members added at the
// front (member must end with a comma).
func withField(body, member string) string {
	i := strings.IndexByte(body, '{')
	return body[:i+1] + member + body[i+1:]
}

func TestFilterRequest(t *testing.T) {
	require.NotContains(t, bedrockConverseBare, "additionalModelRequestFields")
	m := betasync.Default()
	const (
		bedrockBetas  = `["context-1m-2025-08-07","fine-grained-tool-streaming-2025-05-14","tool-search-tool-2025-10-19"]`
		converseBetas = `["context-1m-2025-08-07","fine-grained-tool-streaming-2025-05-14"]`
		vertexBetas   = `["context-1m-2025-08-07","interleaved-thinking-2025-05-14","tool-search-tool-2025-10-19"]`
		vertexLine    = "context-1m-2025-08-07,interleaved-thinking-2025-05-14,tool-search-tool-2025-10-19"
		anthropicLine = "advanced-tool-use-2025-11-20,context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,interleaved-thinking-2025-05-14"
	)

	tests := []struct {
		name     string
		provider string
		header   http.Header
		body     string
		// wantBody is the expected body (compared as JSON); "" means the
		// input must come back as the very same bytes.
		wantBody string
		// wantLine is the expected single header line; "" means removed.
		wantLine string
	}{
		{
			name:     "bedrock invoke: header moves to body",
			provider: "bedrock",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     bedrockInvokeBody,
			wantBody: withField(bedrockInvokeBody, `"anthropic_beta":`+bedrockBetas+`,`),
		},
		{
			name:     "bedrock invoke: body and header betas merged and filtered",
			provider: "bedrock",
			header:   http.Header{"Anthropic-Beta": {"context-1m-2025-08-07, interleaved-thinking-2025-05-14"}},
			body:     withField(bedrockInvokeBody, `"anthropic_beta":["computer-use-2025-01-24","files-api-2025-04-14","context-1m-2025-08-07"],`),
			wantBody: withField(bedrockInvokeBody, `"anthropic_beta":["computer-use-2025-01-24","context-1m-2025-08-07"],`),
		},
		{
			name:     "bedrock invoke: body betas only",
			provider: "bedrock",
			header:   http.Header{},
			body:     withField(bedrockInvokeBody, `"anthropic_beta":["advanced-tool-use-2025-11-20","tool-search-tool-2025-10-19"],`),
			wantBody: withField(bedrockInvokeBody, `"anthropic_beta":["tool-search-tool-2025-10-19"],`),
		},
		{
			name:     "bedrock invoke: nothing survives removes the body field",
			provider: "bedrock",
			header:   http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14"}},
			body:     withField(bedrockInvokeBody, `"anthropic_beta":["files-api-2025-04-14"],`),
			wantBody: bedrockInvokeBody,
		},
		{
			name:     "bedrock invoke: null body field removed",
			provider: "bedrock",
			header:   http.Header{},
			body:     withField(bedrockInvokeBody, `"anthropic_beta":null,`),
			wantBody: bedrockInvokeBody,
		},
		{
			name:     "bedrock invoke: header dropped, body untouched",
			provider: "bedrock",
			header:   http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14,claude-code-20250219"}},
			body:     bedrockInvokeBody,
		},
		{
			name:     "bedrock invoke: nothing at all",
			provider: "bedrock",
			header:   http.Header{},
			body:     bedrockInvokeBody,
		},
		{
			name:     "bedrock invoke: empty body gets the field",
			provider: "bedrock",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     "",
			wantBody: `{"anthropic_beta":` + bedrockBetas + `}`,
		},
		{
			name:     "bedrock converse: header moves into additionalModelRequestFields",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     bedrockConverseBody,
			wantBody: strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": `+converseBetas+`}`, 1),
		},
		{
			name:     "bedrock converse: additionalModelRequestFields created",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"effort-2025-11-24"}},
			body:     bedrockConverseBare,
			wantBody: strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"anthropic_beta": ["effort-2025-11-24"]}`, 1),
		},
		{
			name:     "bedrock converse: nested betas merged, other member kept",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"context-1m-2025-08-07"}},
			body:     strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": ["effort-2025-11-24", "files-api-2025-04-14"]}`, 1),
			wantBody: strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": ["context-1m-2025-08-07", "effort-2025-11-24"]}`, 1),
		},
		{
			name:     "bedrock converse: top-level body betas moved into nested field",
			provider: "bedrock_converse",
			header:   http.Header{},
			body:     withField(bedrockConverseBody, `"anthropic_beta":["effort-2025-11-24","oauth-2025-04-20"],`),
			wantBody: strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": ["effort-2025-11-24"]}`, 1),
		},
		{
			name:     "bedrock converse: top-level and nested betas merged",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"effort-2025-11-24"}},
			body:     withField(strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"anthropic_beta": ["context-1m-2025-08-07"], "top_k": 200}`, 1), `"anthropic_beta":["structured-outputs-2025-11-13","effort-2025-11-24"],`),
			wantBody: strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": ["context-1m-2025-08-07", "effort-2025-11-24", "structured-outputs-2025-11-13"]}`, 1),
		},
		{
			name:     "bedrock converse: nothing survives keeps other members",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14"}},
			body:     strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"top_k": 200, "anthropic_beta": ["files-api-2025-04-14"]}`, 1),
			wantBody: bedrockConverseBody,
		},
		{
			name:     "bedrock converse: nothing survives removes emptied additionalModelRequestFields",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14"}},
			body:     strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{"anthropic_beta": ["files-api-2025-04-14"]}`, 1),
			wantBody: bedrockConverseBare,
		},
		{
			name:     "bedrock converse: header dropped, body untouched",
			provider: "bedrock_converse",
			header:   http.Header{"Anthropic-Beta": {"claude-code-20250219"}},
			body:     bedrockConverseBody,
		},
		{
			name:     "bedrock converse: existing empty additionalModelRequestFields left alone",
			provider: "bedrock_converse",
			header:   http.Header{},
			body:     strings.Replace(bedrockConverseBody, `{"top_k": 200}`, `{}`, 1),
		},
		{
			name:     "vertex: header and body",
			provider: "vertex_ai",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     vertexBody,
			wantBody: withField(vertexBody, `"anthropic_beta":`+vertexBetas+`,`),
			wantLine: vertexLine,
		},
		{
			name:     "vertex: body betas also go to the header",
			provider: "vertex_ai",
			header:   http.Header{"anthropic-beta": {"interleaved-thinking-2025-05-14"}},
			body:     withField(vertexBody, `"anthropic_beta":["context-1m-2025-08-07","advanced-tool-use-2025-11-20","effort-2025-11-24"],`),
			wantBody: withField(vertexBody, `"anthropic_beta":`+vertexBetas+`,`),
			wantLine: vertexLine,
		},
		{
			name:     "vertex: nothing survives",
			provider: "vertex_ai",
			header:   http.Header{"Anthropic-Beta": {"effort-2025-11-24"}},
			body:     withField(vertexBody, `"anthropic_beta":["files-api-2025-04-14"],`),
			wantBody: vertexBody,
		},
		{
			name:     "anthropic: header only, body same bytes",
			provider: "anthropic",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     anthropicBody,
			wantLine: anthropicLine,
		},
		{
			name:     "anthropic: repeated and non-canonical lines merged",
			provider: "anthropic",
			header:   http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14,claude-code-20250219"}, "anthropic-beta": {"context-1m-2025-08-07", "fine-grained-tool-streaming-2025-05-14, advanced-tool-use-2025-11-20"}},
			body:     anthropicBody,
			wantLine: anthropicLine,
		},
		{
			name:     "anthropic: body betas move to the header",
			provider: "anthropic",
			header:   http.Header{"Anthropic-Beta": {"context-1m-2025-08-07"}},
			body:     withField(anthropicBody, `"anthropic_beta":["effort-2025-11-24","bash_20241022"],`),
			wantBody: anthropicBody,
			wantLine: "context-1m-2025-08-07,effort-2025-11-24",
		},
		{
			name:     "anthropic: empty body",
			provider: "anthropic",
			header:   http.Header{"Anthropic-Beta": {"effort-2025-11-24"}},
			body:     "",
			wantLine: "effort-2025-11-24",
		},
		{
			name:     "azure_ai: header only",
			provider: "azure_ai",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     anthropicBody,
			wantLine: "advanced-tool-use-2025-11-20,context-1m-2025-08-07,interleaved-thinking-2025-05-14",
		},
		{
			name:     "unknown provider: everything dropped",
			provider: "openai",
			header:   http.Header{"Anthropic-Beta": {claudeCodeHeader}},
			body:     anthropicBody,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header.Clone()
			h.Set("Content-Type", "application/json")
			body := []byte(tt.body)

			out, err := m.FilterRequest(tt.provider, h, body)
			require.NoError(t, err)

			if tt.wantBody == "" {
				assert.Equal(t, body, out)
				if len(body) > 0 {
					assert.Same(t, &body[0], &out[0], "unchanged body must be the same bytes")
				}
			} else {
				assert.JSONEq(t, tt.wantBody, string(out))
				if len(body) > 0 && len(out) > 0 {
					assert.NotSame(t, &body[0], &out[0])
				}
			}
			if strings.Contains(tt.body, "<b>&</b>") {
				assert.Contains(t, string(out), "<b>&</b>", "prompt must survive unescaped")
				assert.NotContains(t, string(out), `\u003c`)
				assert.NotContains(t, string(out), `\u0026`)
			}
			if strings.Contains(tt.body, `"temperature": 1.50`) {
				assert.Contains(t, string(out), `1.50`, "untouched members pass through as written")
				assert.Contains(t, string(out), `caf\u00e9`, "untouched members pass through as written")
			}

			var keys []string
			for k := range h {
				if strings.EqualFold(k, betasync.HeaderName) {
					keys = append(keys, k)
				}
			}
			if tt.wantLine == "" {
				assert.Empty(t, keys, "header must be removed")
			} else {
				assert.Equal(t, []string{betasync.HeaderName}, keys)
				assert.Equal(t, []string{tt.wantLine}, h.Values(betasync.HeaderName))
			}
			assert.Equal(t, "application/json", h.Get("Content-Type"))
		})
	}
}

// TestFilterRequestBodyItems checks LiteLLM's treatment of a body's
// anthropic_beta array: each item is stripped, but not split on commas,
// while header values still are.
func TestFilterRequestBodyItems(t *testing.T) {
	def := betasync.Default()
	// Keys no header item can match, which LiteLLM accepts (with warnings).
	odd := mustParseDoc(t, `{"bedrock":{"a":"a","b":"b","a,b":"ab","":"empty"}}`)
	require.Len(t, odd.Warnings(), 2)

	tests := []struct {
		name   string
		m      *betasync.Mapping
		header []string
		items  string // the body's anthropic_beta array
		want   string // the body's anthropic_beta array after filtering; "" means none
	}{
		{"item with a comma is dropped", def, nil, `["context-1m-2025-08-07,effort-2025-11-24"]`, ""},
		{"item with a comma dropped, others kept", def, nil, `["context-1m-2025-08-07,effort-2025-11-24","effort-2025-11-24"]`, `["effort-2025-11-24"]`},
		{"header value with a comma is split", def, []string{"context-1m-2025-08-07,effort-2025-11-24"}, `["compact-2026-01-12, oauth-2025-04-20"]`, `["context-1m-2025-08-07","effort-2025-11-24"]`},
		{"items are stripped as Python does", def, nil, `[" context-1m-2025-08-07\t","\u001ceffort-2025-11-24\u001f","\u3000compact-2026-01-12\u0085"]`, `["compact-2026-01-12","context-1m-2025-08-07","effort-2025-11-24"]`},
		{"zero-width space is not stripped", def, nil, `["\u200bcontext-1m-2025-08-07"]`, ""},
		{"empty and blank items dropped", def, nil, `[""," ","\t"]`, ""},
		{"empty array removed", def, nil, `[]`, ""},
		{"header and body merged and de-duplicated", def, []string{" effort-2025-11-24 ,context-1m-2025-08-07"}, `["effort-2025-11-24","context-1m-2025-08-07 "]`, `["context-1m-2025-08-07","effort-2025-11-24"]`},

		// Exactly LiteLLM's lookup, even for odd keys.
		{"odd key: body item with a comma matches it", odd, nil, `["a,b"]`, `["ab"]`},
		{"odd key: header value with a comma does not", odd, []string{"a,b"}, `[]`, `["a","b"]`},
		{"odd key: blank body item matches the empty key", odd, nil, `[" "]`, `["empty"]`},
		{"odd key: blank header items never do", odd, []string{" , ,"}, `[]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add(betasync.HeaderName, v)
			}
			out, err := tt.m.FilterRequest("bedrock", h, []byte(`{"max_tokens":1,"anthropic_beta":`+tt.items+`}`))
			require.NoError(t, err)
			want := `{"max_tokens":1}`
			if tt.want != "" {
				want = `{"max_tokens":1,"anthropic_beta":` + tt.want + `}`
			}
			assert.JSONEq(t, want, string(out))
			assert.Empty(t, h, "bedrock takes betas in the body only")
		})
	}

	t.Run("vertex: body items go to the header too, unsplit", func(t *testing.T) {
		h := http.Header{}
		out, err := def.FilterRequest("vertex_ai", h, []byte(`{"anthropic_beta":["context-1m-2025-08-07,interleaved-thinking-2025-05-14"," interleaved-thinking-2025-05-14\u001e"]}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"anthropic_beta":["interleaved-thinking-2025-05-14"]}`, string(out))
		assert.Equal(t, []string{"interleaved-thinking-2025-05-14"}, h.Values(betasync.HeaderName))
	})

	t.Run("converse: nested items are not split either", func(t *testing.T) {
		out, err := def.FilterRequest("bedrock_converse", http.Header{}, []byte(`{"additionalModelRequestFields":{"anthropic_beta":["context-1m-2025-08-07,effort-2025-11-24","effort-2025-11-24"]}}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"additionalModelRequestFields":{"anthropic_beta":["effort-2025-11-24"]}}`, string(out))
	})
}

func TestFilterRequestInvalidBody(t *testing.T) {
	m := betasync.Default()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"array", `[{"anthropic_beta":["context-1m-2025-08-07"]}]`, "JSON object"},
		{"string", `"x"`, "JSON object"},
		{"null", `null`, "JSON object"},
		{"number", `42`, "JSON object"},
		{"truncated", `{"messages":[`, "JSON object"},
		{"trailing data", `{"max_tokens":1} {}`, "JSON object"},
		{"anthropic_beta string", `{"anthropic_beta":"x","max_tokens":1}`, "anthropic_beta must be an array of strings"},
		{"anthropic_beta object", `{"anthropic_beta":{}}`, "anthropic_beta must be an array of strings"},
		{"anthropic_beta with a number", `{"anthropic_beta":["context-1m-2025-08-07",1]}`, "anthropic_beta must be an array of strings"},
		{"additionalModelRequestFields array", `{"additionalModelRequestFields":[]}`, "additionalModelRequestFields must be an object"},
		{"additionalModelRequestFields null", `{"additionalModelRequestFields":null}`, "additionalModelRequestFields must be an object"},
		{"additionalModelRequestFields string", `{"additionalModelRequestFields":"x"}`, "additionalModelRequestFields must be an object"},
		{"nested anthropic_beta string", `{"additionalModelRequestFields":{"anthropic_beta":"x"}}`, "additionalModelRequestFields.anthropic_beta must be an array of strings"},
	}
	for _, provider := range []string{"bedrock", "bedrock_converse", "vertex_ai", "anthropic"} {
		for _, tt := range tests {
			t.Run(provider+"/"+tt.name, func(t *testing.T) {
				h := http.Header{
					"Anthropic-Beta": {claudeCodeHeader, "effort-2025-11-24"},
					"anthropic-beta": {"files-api-2025-04-14"},
				}
				before := h.Clone()

				out, err := m.FilterRequest(provider, h, []byte(tt.body))
				assert.Nil(t, out)
				requireInvalid(t, err, tt.want)
				assert.Equal(t, before, h, "header must be left untouched")
			})
		}
	}
}

func TestPlacementFor(t *testing.T) {
	def := betasync.Default()
	aliased := mustParseDoc(t, `{"provider_aliases":{"aws":"bedrock","aws_converse":"bedrock_converse","gcp":"vertex_ai"},"bedrock":{},"bedrock_converse":{},"vertex_ai":{}}`)
	shadowed := mustParseDoc(t, `{"provider_aliases":{"anthropic":"bedrock","bedrock":"anthropic","gcp":"bedrock"},"anthropic":{},"bedrock":{}}`)
	tests := []struct {
		name     string
		m        *betasync.Mapping
		provider string
		want     betasync.Placement
	}{
		{"bedrock", def, "bedrock", betasync.InBody},
		{"bedrock_converse", def, "bedrock_converse", betasync.InConverseBody},
		{"vertex_ai", def, "vertex_ai", betasync.InHeader | betasync.InBody},
		{"anthropic", def, "anthropic", betasync.InHeader},
		{"azure_ai", def, "azure_ai", betasync.InHeader},
		{"databricks", def, "databricks", betasync.InHeader},
		{"bedrock_mantle", def, "bedrock_mantle", betasync.InHeader},
		{"unknown", def, "openai", betasync.InHeader},
		{"alias to bedrock", aliased, "aws", betasync.InBody},
		{"alias to bedrock_converse", aliased, "aws_converse", betasync.InConverseBody},
		{"alias to vertex_ai", aliased, "gcp", betasync.InHeader | betasync.InBody},
		{"known name aliased elsewhere places by itself", shadowed, "anthropic", betasync.InHeader},
		{"bedrock aliased elsewhere places by itself", shadowed, "bedrock", betasync.InBody},
		{"alias of a shadowing alias places like its direct target", shadowed, "gcp", betasync.InBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.m.PlacementFor(tt.provider))
		})
	}

	t.Run("alias places like its target", func(t *testing.T) {
		m := mustParseDoc(t, `{"provider_aliases":{"aws":"bedrock"},"bedrock":{"a":"renamed-a"}}`)
		h := http.Header{"Anthropic-Beta": {"a"}}
		out, err := m.FilterRequest("aws", h, []byte(`{"max_tokens":1}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"max_tokens":1,"anthropic_beta":["renamed-a"]}`, string(out))
		assert.Empty(t, h)
	})
}

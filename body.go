package betasync

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// Placement says where a provider expects beta features in a request.
type Placement uint8

// Places betas can travel. A provider may use more than one.
const (
	InHeader       Placement = 1 << iota // the anthropic-beta header
	InBody                               // the body's top-level "anthropic_beta" array
	InConverseBody                       // the body's "additionalModelRequestFields.anthropic_beta" array
)

// bodyField and converseField name the JSON members that carry betas.
const (
	bodyField     = "anthropic_beta"
	converseField = "additionalModelRequestFields"
)

// PlacementFor returns where provider expects betas: the body for Bedrock
// Invoke, the nested Converse field for Bedrock Converse, header and body for
// Vertex AI, and the header for Anthropic, Azure AI, Databricks and Bedrock
// Mantle. Those names place by themselves even when an alias of the same name
// points elsewhere (the alias only chooses the section, as in LiteLLM, where
// the route decides placement); any other name places like the provider it
// is an alias of, and the header is the default for future providers.
func (m *Mapping) PlacementFor(provider string) Placement {
	if p, ok := knownPlacement(provider); ok {
		return p
	}
	if p, ok := knownPlacement(m.Resolve(provider)); ok {
		return p
	}
	return InHeader
}

func knownPlacement(provider string) (Placement, bool) {
	switch provider {
	case "bedrock":
		return InBody, true
	case "bedrock_converse":
		return InConverseBody, true
	case "vertex_ai":
		return InHeader | InBody, true
	case "anthropic", "azure_ai", "databricks", "bedrock_mantle":
		return InHeader, true
	}
	return 0, false
}

// FilterRequest prepares a request for provider: it gathers the betas the
// client sent (every anthropic-beta header line, and any anthropic_beta array
// already in the body, top-level or under additionalModelRequestFields),
// filters them (header values are split on commas; body array items are
// only stripped, so an item holding a comma is dropped, as in LiteLLM), and places the survivors where the provider expects them,
// removing them from everywhere else. h is rewritten in place; the returned
// body is the rewritten JSON (the input is returned unchanged when it holds
// no betas and none are to be placed in it). A body that is not a JSON object,
// or a nil h, is an EINVALID error, and then h is left untouched.
func (m *Mapping) FilterRequest(provider string, h http.Header, body []byte) ([]byte, error) {
	if h == nil {
		return nil, Errorf(EINVALID, "FilterRequest needs a non-nil http.Header")
	}
	doc, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	bodyBetas, err := doc.takeBetas()
	if err != nil {
		return nil, err
	}
	// Header values are split on commas; body items are not (LiteLLM
	// filters a body array item by item).
	betas := m.AppendBetas(nil, provider, headerValues(h)...)
	betas = m.appendItems(betas, 0, provider, bodyBetas)

	deleteHeader(h)
	place := m.PlacementFor(provider)
	if place&InHeader != 0 && len(betas) > 0 {
		h.Set(HeaderName, strings.Join(betas, ","))
	}
	if len(betas) > 0 {
		if place&InBody != 0 {
			if err := doc.set(bodyField, betas); err != nil {
				return nil, err
			}
		}
		if place&InConverseBody != 0 {
			if err := doc.setConverse(betas); err != nil {
				return nil, err
			}
		}
	}
	if !doc.changed {
		return body, nil
	}
	return doc.encode()
}

// requestBody is a JSON object body whose members are kept raw, so fields
// the filter does not touch pass through byte for byte.
type requestBody struct {
	fields  map[string]json.RawMessage
	changed bool
}

func decodeBody(body []byte) (*requestBody, error) {
	d := &requestBody{}
	if len(bytes.TrimSpace(body)) == 0 {
		d.fields = map[string]json.RawMessage{}
		return d, nil
	}
	if err := json.Unmarshal(body, &d.fields); err != nil || d.fields == nil {
		return nil, Errorf(EINVALID, "request body must be a JSON object")
	}
	return d, nil
}

// takeBetas removes anthropic_beta from the top level and from
// additionalModelRequestFields, returning what they held.
func (d *requestBody) takeBetas() ([]string, error) {
	var out []string
	if raw, ok := d.fields[bodyField]; ok {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, Errorf(EINVALID, "request body: %s must be an array of strings", bodyField)
		}
		out = append(out, list...)
		delete(d.fields, bodyField)
		d.changed = true
	}
	raw, ok := d.fields[converseField]
	if !ok {
		return out, nil
	}
	var nested map[string]json.RawMessage
	if err := json.Unmarshal(raw, &nested); err != nil || nested == nil {
		return nil, Errorf(EINVALID, "request body: %s must be an object", converseField)
	}
	inner, ok := nested[bodyField]
	if !ok {
		return out, nil
	}
	var list []string
	if err := json.Unmarshal(inner, &list); err != nil {
		return nil, Errorf(EINVALID, "request body: %s.%s must be an array of strings", converseField, bodyField)
	}
	out = append(out, list...)
	delete(nested, bodyField)
	if len(nested) == 0 {
		delete(d.fields, converseField)
	} else if err := d.set(converseField, nested); err != nil {
		return nil, err
	}
	d.changed = true
	return out, nil
}

func (d *requestBody) set(key string, v any) error {
	raw, err := marshalNoEscape(v)
	if err != nil {
		return Errorf(EINTERNAL, "encoding %s: %v", key, err)
	}
	d.fields[key] = raw
	d.changed = true
	return nil
}

func (d *requestBody) setConverse(betas []string) error {
	nested := map[string]json.RawMessage{}
	if raw, ok := d.fields[converseField]; ok {
		if err := json.Unmarshal(raw, &nested); err != nil {
			return Errorf(EINVALID, "request body: %s must be an object", converseField)
		}
	}
	list, err := marshalNoEscape(betas)
	if err != nil {
		return Errorf(EINTERNAL, "encoding %s: %v", bodyField, err)
	}
	nested[bodyField] = list
	return d.set(converseField, nested)
}

func (d *requestBody) encode() ([]byte, error) {
	b, err := marshalNoEscape(d.fields)
	if err != nil {
		return nil, Errorf(EINTERNAL, "encoding request body: %v", err)
	}
	return b, nil
}

// marshalNoEscape is json.Marshal without HTML escaping, so prompts that
// contain <, > or & pass through unaltered.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

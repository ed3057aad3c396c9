// Command openapi2jsonschema turns the Kubernetes OpenAPI v2 document
// (api/openapi-spec/swagger.json, shipped in the k8s.io/kubernetes Go module)
// into the standalone, strict JSON schemas kubeconform reads: one file per
// kind, named as kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json
// template expects (deployment-apps-v1.json, service-v1.json).
//
// kubeconform's own schemas are downloaded from GitHub, which CI cannot
// reach; the Go module proxy can serve the specification they are made from,
// so scripts/validate-deploy.sh derives them here instead. It does what
// yannh/kubernetes-json-schema's "-standalone-strict" flavour does:
//   - every $ref is inlined, so a file needs no other file; a type that
//     contains itself (only apiextensions' JSONSchemaProps) is cut to {} at
//     the repeat;
//   - an object with declared properties refuses any other, so a misspelt
//     field is an error;
//   - a field that is not required may be null, as the API server allows;
//   - IntOrString and Quantity take a string or a number.
//
// Descriptions, formats and x-kubernetes-* extensions are dropped: the
// schemas only validate.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	in := flag.String("in", "", "the Kubernetes OpenAPI v2 document (swagger.json)")
	out := flag.String("out", "", "directory to write the schemas into (created)")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: openapi2jsonschema -in swagger.json -out DIR")
		os.Exit(2)
	}
	n, err := run(*in, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi2jsonschema:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d schemas to %s\n", n, *out)
}

type schema = map[string]any

// gvk is one entry of a definition's x-kubernetes-group-version-kind.
type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func run(in, out string) (int, error) {
	raw, err := os.ReadFile(in)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]schema `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("error reading %s: %w", in, err)
	}
	if len(doc.Definitions) == 0 {
		return 0, fmt.Errorf("%s has no definitions: not an OpenAPI v2 document", in)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names) // the first definition of a file name wins, every run
	c := converter{defs: doc.Definitions}
	written := map[string]bool{}
	for _, name := range names {
		def := doc.Definitions[name]
		var kinds []gvk
		if b, err := json.Marshal(def["x-kubernetes-group-version-kind"]); err == nil {
			_ = json.Unmarshal(b, &kinds)
		}
		for _, k := range kinds {
			file := fileName(k)
			if written[file] {
				continue
			}
			s := c.expand(def, map[string]bool{name: true})
			b, err := json.Marshal(s)
			if err != nil {
				return 0, fmt.Errorf("error encoding %s: %w", name, err)
			}
			if err := os.WriteFile(filepath.Join(out, file), b, 0o644); err != nil {
				return 0, err
			}
			written[file] = true
		}
	}
	return len(written), nil
}

// fileName follows kubeconform's template variables: the kind in lower case,
// then the group's first label (none for the core group), then the version.
func fileName(k gvk) string {
	suffix := "-" + strings.ToLower(k.Version)
	if k.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(k.Group, ".")[0]) + suffix
	}
	return strings.ToLower(k.Kind) + suffix + ".json"
}

type converter struct {
	defs map[string]schema
}

// Types whose wire form the document describes only as a string.
var special = map[string]schema{
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": []any{schema{"type": "string"}, schema{"type": "integer"}}},
	"io.k8s.apimachinery.pkg.api.resource.Quantity":   {"oneOf": []any{schema{"type": "string"}, schema{"type": "number"}}},
}

// expand returns s with its references inlined and the strict rules
// applied. seen holds the definitions being expanded on the current path.
func (c converter) expand(s schema, seen map[string]bool) schema {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		if sp, ok := special[name]; ok {
			return clone(sp)
		}
		def, ok := c.defs[name]
		if !ok || seen[name] {
			return schema{}
		}
		seen[name] = true
		defer delete(seen, name)
		return c.expand(def, seen)
	}
	out := schema{}
	if t, ok := s["type"]; ok {
		out["type"] = t
	}
	if items, ok := s["items"].(schema); ok {
		out["items"] = c.expand(items, seen)
	}
	switch ap := s["additionalProperties"].(type) {
	case schema:
		out["additionalProperties"] = c.expand(ap, seen)
	case bool:
		out["additionalProperties"] = ap
	}
	props, _ := s["properties"].(schema)
	if props == nil {
		return out
	}
	required := map[string]bool{}
	if req, ok := s["required"].([]any); ok && len(req) > 0 {
		out["required"] = req
		for _, r := range req {
			if name, ok := r.(string); ok {
				required[name] = true
			}
		}
	}
	outProps := schema{}
	for name, p := range props {
		ps, ok := p.(schema)
		if !ok {
			continue
		}
		e := c.expand(ps, seen)
		if !required[name] {
			e = nullable(e)
		}
		outProps[name] = e
	}
	out["properties"] = outProps
	if _, ok := out["additionalProperties"]; !ok {
		out["additionalProperties"] = false
	}
	if _, ok := out["type"]; !ok {
		out["type"] = "object"
	}
	return out
}

// nullable lets an optional field be null, as `field:` with no value is in
// YAML.
func nullable(s schema) schema {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case nil:
		if alts, ok := s["oneOf"].([]any); ok {
			s["oneOf"] = append(alts, schema{"type": "null"})
		}
	}
	return s
}

func clone(s schema) schema {
	b, _ := json.Marshal(s)
	var out schema
	_ = json.Unmarshal(b, &out)
	return out
}

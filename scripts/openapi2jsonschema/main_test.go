package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A small OpenAPI v2 document with what the real one has: references, a
// self-containing type, IntOrString, a map, and a kind in a named group.
const testSpec = `{"definitions": {
  "io.k8s.api.apps.v1.Thing": {
    "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Thing"}],
    "type": "object", "required": ["spec"],
    "properties": {
      "kind": {"type": "string", "description": "dropped"},
      "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.ThingSpec"}
    }
  },
  "io.k8s.api.apps.v1.ThingSpec": {
    "type": "object",
    "properties": {
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "child": {"$ref": "#/definitions/io.k8s.api.apps.v1.ThingSpec"}
    }
  },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.api.core.v1.Plain": {
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Plain"}],
    "type": "object", "properties": {"a": {"type": "integer", "format": "int32"}}
  }
}}`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(in, []byte(testSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	n, err := run(in, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("wrote %d schemas, want 2", n)
	}
	read := func(name string) any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	nullableString := map[string]any{"type": []any{"string", "null"}}
	want := map[string]any{
		"type": "object", "required": []any{"spec"}, "additionalProperties": false,
		"properties": map[string]any{
			"kind": nullableString,
			"spec": map[string]any{
				"type": "object", "additionalProperties": false,
				"properties": map[string]any{
					"port": map[string]any{"oneOf": []any{
						map[string]any{"type": "string"}, map[string]any{"type": "integer"}, map[string]any{"type": "null"}}},
					"labels": map[string]any{"type": []any{"object", "null"}, "additionalProperties": map[string]any{"type": "string"}},
					"child":  map[string]any{}, // the repeat is cut
				},
			},
		},
	}
	if got := read("thing-apps-v1.json"); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("thing-apps-v1.json =\n%s", g)
	}
	wantPlain := map[string]any{"type": "object", "additionalProperties": false,
		"properties": map[string]any{"a": map[string]any{"type": []any{"integer", "null"}}}}
	if got := read("plain-v1.json"); !reflect.DeepEqual(got, wantPlain) {
		t.Errorf("plain-v1.json = %v, want %v", got, wantPlain)
	}
}

func TestRun_NotOpenAPI(t *testing.T) {
	in := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(in, []byte(`{"openapi": "3.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(in, t.TempDir()); err == nil {
		t.Error("a document without definitions was accepted")
	}
}

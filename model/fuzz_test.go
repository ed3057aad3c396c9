package model_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/model"
)

// Any string given as an ID decodes to a known kind or is refused as
// BAD_USER_INPUT; an accepted ID re-encodes to itself.
func FuzzParseGlobalID(f *testing.F) {
	f.Add(model.GlobalID(model.KindUser, uuid.MustParse("01a22958-5854-7723-af8b-dbd03a49c4f6")))
	f.Add(model.JobGlobalID(42))
	f.Add("VXNlcjpub3QtYS11dWlk")
	f.Add("")
	f.Add(strings.Repeat("A", 200))
	f.Fuzz(func(t *testing.T, gid string) {
		if kind, id, err := model.ParseGlobalID("id", gid); err == nil {
			if model.GlobalID(kind, id) != gid {
				t.Fatalf("%q decoded to %s %s, which encodes differently", gid, kind, id)
			}
		} else if model.ErrorCode(err) != model.CodeInvalid {
			t.Fatalf("%q: %v", gid, err)
		}
		if n, err := model.ParseJobID("id", gid); err == nil {
			if model.JobGlobalID(n) != gid {
				t.Fatalf("job %q decoded to %d, which encodes differently", gid, n)
			}
		} else if model.ErrorCode(err) != model.CodeInvalid {
			t.Fatalf("job %q: %v", gid, err)
		}
	})
}

// Validation answers any input with nil or BAD_USER_INPUT naming the field.
func FuzzValidateInput(f *testing.F) {
	for _, s := range []string{"ada@example.com", "a@b", "not an email", "ada", "a_b.c-d", strings.Repeat("x", 300), "\x00", "ü@ü.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, err := range map[string]error{
			"email":    model.ValidateEmail("email", s),
			"username": model.ValidateUsername("username", s),
			"name":     model.ValidateName("name", s),
		} {
			if err == nil {
				continue
			}
			var me *model.Error
			if !errors.As(err, &me) || me.Code != model.CodeInvalid || me.Field != name {
				t.Fatalf("%s(%q): %v", name, s, err)
			}
		}
		if model.ValidateEmail("email", s) == nil && (strings.ContainsAny(s, " \t\r\n") || !strings.Contains(s, "@")) {
			t.Fatalf("accepted %q as an email", s)
		}
	})
}

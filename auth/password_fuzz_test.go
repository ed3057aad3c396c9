package auth

import (
	"strings"
	"testing"

	"github.com/usergraph/usergraph/model"
)

// The password policy answers any string with nil or BAD_USER_INPUT, and
// never accepts one outside 8 to 128 characters.
func FuzzValidatePassword(f *testing.F) {
	for _, s := range []string{"correct horse battery", "password123", "short", strings.Repeat("x", 200), "ÄÖÜäöüß€€€€", "\x00\x00\x00\x00\x00\x00\x00\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		err := ValidatePassword("password", pw)
		if err == nil {
			if n := len([]rune(pw)); n < 8 || n > 128 {
				t.Fatalf("accepted a password of %d characters", n)
			}
			return
		}
		if model.ErrorCode(err) != model.CodeInvalid {
			t.Fatalf("%q: %v", pw, err)
		}
	})
}

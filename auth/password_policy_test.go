package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/usergraph/usergraph/model"
)

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		wantMsg  string // "" means accepted
	}{
		{"empty", "", "at least 8 characters"},
		{"7 characters", "kq3vz8w", "at least 8 characters"},
		{"8 characters", "kq3vz8wp", ""},
		{"128 characters", strings.Repeat("kq3vz8wp", 16), ""},
		{"129 characters", strings.Repeat("kq3vz8wp", 16) + "x", "at most 128 characters"},
		// Characters, not bytes: 7 two-byte runes are 14 bytes and still too
		// short; 128 four-byte runes are 512 bytes and still allowed.
		{"7 two-byte characters", strings.Repeat("é", 7), "at least 8 characters"},
		{"8 two-byte characters", strings.Repeat("é", 8), ""},
		{"128 four-byte characters", strings.Repeat("🔒", 128), ""},
		{"129 four-byte characters", strings.Repeat("🔒", 129), "at most 128 characters"},
		{"invalid UTF-8", "kq3vz8wp\xff", "valid UTF-8"},
		// No composition rules: lower-case letters and spaces only is fine.
		{"long passphrase", "violet anchor drizzle quantum seventeen", ""},
		{"non-Latin passphrase", "ночной поезд в самарканд", ""},
		// Spaces count and are kept: "password" padded is not "password".
		{"common password padded with spaces", " password ", ""},
		// Entries checked to be in common_passwords.txt.
		{"common: password123", "password123", "most commonly used"},
		{"common: trustno1", "trustno1", "most commonly used"},
		{"common, other case: PassWord123", "PassWord123", "most commonly used"},
		{"common, upper case: QWERTYUIOP", "QWERTYUIOP", "most commonly used"},
		{"common, rank 6576: iloveyou1", "iloveyou1", "most commonly used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidatePassword("input.password", tt.password)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ValidatePassword = %v, want accepted", err)
				}
				return
			}
			var e *model.Error
			if !errors.As(err, &e) {
				t.Fatalf("ValidatePassword = %v (%T), want a *model.Error", err, err)
			}
			if e.Code != model.CodeInvalid || e.Field != "input.password" {
				t.Errorf("error code, field = %s, %q; want %s, %q", e.Code, e.Field, model.CodeInvalid, "input.password")
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error message %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestCommonPasswordsListIsTheTop10000LowerCased(t *testing.T) {
	t.Parallel()
	set := commonPasswords()
	if len(set) != 10_000 {
		t.Errorf("blocklist has %d entries, want 10000", len(set))
	}
	for p := range set {
		if p != strings.ToLower(p) || strings.TrimSpace(p) != p || p == "" || strings.HasPrefix(p, "#") {
			t.Errorf("blocklist entry %q is not a bare lower-cased password", p)
		}
	}
	// The first and last entries of the list, so a truncated file fails.
	for _, p := range []string{"123456", "24081990"} {
		if _, ok := set[p]; !ok {
			t.Errorf("blocklist lacks %q", p)
		}
	}
}

package model

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input rules. Each validator returns a BAD_USER_INPUT *Error naming field,
// so a client can point at the offending input.

var (
	usernameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,30}[A-Za-z0-9]$`)
	permissionRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,30}:[a-z*][a-z0-9_-]{0,30}$`)
)

// ValidateEmail checks an address as a mail server would accept it: one
// addr-spec without a display name, at most 254 characters, a dotted domain.
func ValidateEmail(field, email string) error {
	e := strings.TrimSpace(email)
	if e == "" {
		return Invalid(field, "email is required")
	}
	if len(e) > 254 {
		return Invalid(field, "email must be at most 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return Invalid(field, "email is not a valid address")
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || !strings.Contains(e[at+1:], ".") || strings.HasSuffix(e, ".") {
		return Invalid(field, "email is not a valid address")
	}
	return nil
}

// ValidateUsername allows 3 to 32 letters, digits, '.', '_' and '-',
// starting and ending with a letter or digit. ASCII only, so two usernames
// cannot look alike through Unicode confusables.
func ValidateUsername(field, username string) error {
	if !usernameRe.MatchString(username) {
		return Invalid(field, "username must be 3 to 32 characters: letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	return nil
}

// ValidateText checks a free-text field: valid UTF-8, no control characters,
// within [min, max] characters.
func ValidateText(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen {
		if minLen > 0 {
			return Invalid(field, "must be %d to %d characters", minLen, maxLen)
		}
		return Invalid(field, "must be at most %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateName checks the name of a role or group: 1 to 64 characters,
// trimmed, no control characters.
func ValidateName(field, name string) error {
	if strings.TrimSpace(name) != name {
		return Invalid(field, "must not start or end with spaces")
	}
	if strings.ContainsAny(name, "\n\t") {
		return Invalid(field, "must be a single line")
	}
	return ValidateText(field, name, 1, 64)
}

// ValidatePermissions checks permission names ("resource:action") and
// rejects duplicates; at most 100 per role.
func ValidatePermissions(field string, perms []string) error {
	if len(perms) > 100 {
		return Invalid(field, "at most 100 permissions")
	}
	seen := make(map[string]bool, len(perms))
	for _, p := range perms {
		if !permissionRe.MatchString(p) {
			return Invalid(field, "%q is not a permission name like \"users:read\"", truncate(p, 64))
		}
		if seen[p] {
			return Invalid(field, "%q is listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

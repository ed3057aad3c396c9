package db

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/model"
)

// Any string given as a cursor decodes or is refused as BAD_USER_INPUT;
// nothing panics, and only cursors this list made are accepted.
func FuzzDecodeCursor(f *testing.F) {
	id := uuid.MustParse("01a22958-5854-7723-af8b-dbd03a49c4f6")
	f.Add(encodeCursor("users:created_at", "2026-01-02T03:04:05Z", id))
	f.Add(encodeCursor("users:email", "ada@example.com", id))
	f.Add("")
	f.Add("!!!")
	f.Add("dXNlcnM6Y3JlYXRlZF9hdA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor("after", "users:created_at", s)
		if err != nil {
			if model.ErrorCode(err) != model.CodeInvalid {
				t.Fatalf("a bad cursor gave %v", err)
			}
			return
		}
		// Accepted: it must be exactly what this list would have made.
		if encodeCursor("users:created_at", c.Value, c.ID) != s {
			t.Fatalf("accepted a cursor the list did not make: %q", s)
		}
	})
}

// Encoding then decoding gives back the position, whatever the value.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add("users:email", "ada@example.com", "01a22958-5854-7723-af8b-dbd03a49c4f6")
	f.Add("groups:name", "", "00000000-0000-0000-0000-000000000000")
	f.Fuzz(func(t *testing.T, tag, value, rawID string) {
		id, err := uuid.Parse(rawID)
		if err != nil || len(tag)+len(value) > 700 {
			return
		}
		if strings.Contains(tag, cursorSep) || strings.Contains(value, cursorSep) {
			return // the separator cannot occur in tags or sort values
		}
		c, err := decodeCursor("after", tag, encodeCursor(tag, value, id))
		if err != nil || c.Value != value || c.ID != id {
			t.Fatalf("round trip of %q %q %s: %+v %v", tag, value, id, c, err)
		}
	})
}

// ParsePage answers any arguments with a page or BAD_USER_INPUT.
func FuzzParsePage(f *testing.F) {
	f.Add(10, -1, "", "")
	f.Add(-1, 5, "", "abc")
	f.Add(1000, 0, "x", "y")
	f.Fuzz(func(t *testing.T, first, last int, after, before string) {
		var a PageArgs
		if first >= 0 {
			a.First = &first
		}
		if last >= 0 {
			a.Last = &last
		}
		if after != "" {
			a.After = &after
		}
		if before != "" {
			a.Before = &before
		}
		if _, err := ParsePage(a, "users:created_at"); err != nil && model.ErrorCode(err) != model.CodeInvalid {
			t.Fatalf("ParsePage: %v", err)
		}
	})
}

package cache

import (
	"bytes"
	"fmt"
	"testing"
)

// An answer is returned only for its own digest; the bytes kept stay
// within the budget, the least recently used going first; a replaced
// answer frees its bytes, and one too large is not kept.
func TestLocalAnswers_KeepWithinTheBudgetAndAnswerOnlyTheirDigest(t *testing.T) {
	l := newLocalAnswers()
	a := bytes.Repeat([]byte("a"), 1000)
	l.keep("k", a)
	if got, ok := l.get("k", []byte(digest(a))); !ok || !bytes.Equal(got, a) {
		t.Fatal("a kept answer was not found by its digest")
	}
	if _, ok := l.get("k", []byte(digest([]byte("other")))); ok {
		t.Fatal("an answer was returned for another digest")
	}
	b := bytes.Repeat([]byte("b"), 500)
	l.keep("k", b)
	if l.size != len(b) {
		t.Fatalf("after a replacement %d bytes are counted, want %d", l.size, len(b))
	}
	// The same bytes again hand out the slice kept.
	if kept := l.keep("k", bytes.Clone(b)); &kept[0] != &b[0] || l.size != len(b) {
		t.Fatalf("the same answer again was kept anew (%d bytes counted)", l.size)
	}

	big := make([]byte, localMaxAnswer/2)
	for i := range 2 * localBudget / len(big) {
		l.keep(fmt.Sprint("big", i), big)
	}
	if l.size > localBudget {
		t.Fatalf("%d bytes kept, over the budget of %d", l.size, localBudget)
	}
	if _, ok := l.get("big0", []byte(digest(big))); ok {
		t.Error("the least recently used answer was not dropped")
	}
	if _, ok := l.get(fmt.Sprint("big", 2*localBudget/len(big)-1), []byte(digest(big))); !ok {
		t.Error("the newest answer was dropped")
	}
	if l.keep("huge", make([]byte, localMaxAnswer+1)); l.entries.Contains("huge") {
		t.Error("an answer over localMaxAnswer was kept")
	}
}

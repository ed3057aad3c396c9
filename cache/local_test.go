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
	l.add("k", digest(a), a)
	if got, ok := l.get("k", []byte(digest(a))); !ok || !bytes.Equal(got, a) {
		t.Fatal("a kept answer was not found by its digest")
	}
	if _, ok := l.get("k", []byte(digest([]byte("other")))); ok {
		t.Fatal("an answer was returned for another digest")
	}
	b := bytes.Repeat([]byte("b"), 500)
	l.add("k", digest(b), b)
	if l.size != len(b) {
		t.Fatalf("after a replacement %d bytes are counted, want %d", l.size, len(b))
	}

	big := make([]byte, localMaxAnswer/2)
	for i := range 2 * localBudget / len(big) {
		l.add(fmt.Sprint("big", i), digest(big), big)
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
	if l.add("huge", "d", make([]byte, localMaxAnswer+1)); l.entries.Contains("huge") {
		t.Error("an answer over localMaxAnswer was kept")
	}
}

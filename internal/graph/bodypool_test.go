package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestReadIntoReadsEverythingAndGrows(t *testing.T) {
	for _, n := range []int{0, 1, minBodyBuffer - 1, minBodyBuffer, minBodyBuffer + 1, 3*minBodyBuffer + 7} {
		want := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
		for _, start := range []int{0, 1, n + 1} {
			b := make([]byte, 0, start)
			// One byte per Read: the slowest a body can arrive.
			if err := readInto(&b, iotest.OneByteReader(bytes.NewReader(want))); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("n=%d start=%d: read %d bytes, want %d", n, start, len(b), n)
			}
		}
	}
	b := make([]byte, 0, 4)
	if err := readInto(&b, iotest.TimeoutReader(strings.NewReader("abcdefgh"))); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("error = %v, want the reader's", err)
	}
}

func TestBodyBufferSizes(t *testing.T) {
	if b := getBodyBuffer(1); cap(*b) < minBodyBuffer || len(*b) != 0 {
		t.Fatalf("small hint: len %d cap %d", len(*b), cap(*b))
	}
	big := getBodyBuffer(maxPooledBody + 1)
	if cap(*big) < maxPooledBody+1 {
		t.Fatalf("cap %d below the hint", cap(*big))
	}
	// A buffer over the pooling bound is dropped, not kept by the pool.
	putBodyBuffer(big)
	for i := 0; i < 100; i++ {
		if p := getBodyBuffer(1); cap(*p) > maxPooledBody {
			t.Fatalf("the pool handed out a %d-byte buffer", cap(*p))
		}
	}
}

// A response whose JSON is still undecoded owns its buffer: any number of
// later requests, concurrent or not, must not write into it. Once decoded or
// released, what the job holds is a copy.
func TestPooledBodiesAreNeverShared(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body := fmt.Sprintf(`{"id":%q,"pad":%q}`, r.URL.Query().Get("id"), strings.Repeat(r.URL.Query().Get("id"), 300))
				w.Header().Set("Content-Type", "application/json")
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				_, _ = io.WriteString(w, body)
				if chunked {
					w.(http.Flusher).Flush()
				}
			})
			c, _ := newTestClient(t, s.URL)
			get := func(id string) *Response {
				t.Helper()
				resp, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Query: map[string][]string{"id": {id}}})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Raw == nil {
					t.Fatal("JSON body decoded before anyone read it")
				}
				return resp
			}
			held := get("A")
			heldRaw := string(held.Raw)
			decoded := get("B")
			decodedBody, err := decoded.JSONBody()
			if err != nil {
				t.Fatal(err)
			}
			if decoded.Raw != nil {
				t.Fatal("Raw kept after decoding")
			}
			released := get("C")
			released.Release()
			if released.Raw != nil {
				t.Fatal("Raw kept after Release")
			}
			released.Release() // twice is harmless

			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 25; k++ {
						r := get("Z")
						if k%2 == 0 {
							_, _ = r.JSONBody()
						} else {
							r.Release()
						}
					}
				}()
			}
			wg.Wait()
			if string(held.Raw) != heldRaw {
				t.Fatalf("an undecoded body was overwritten by later requests: %.40s…", held.Raw)
			}
			if m := decodedBody.(map[string]any); m["id"] != "B" || m["pad"] != strings.Repeat("B", 300) {
				t.Fatalf("a decoded body changed: %.40v", m)
			}
			var v map[string]any
			if err := json.Unmarshal(held.Raw, &v); err != nil || v["id"] != "A" {
				t.Fatalf("held body: %v %v", v["id"], err)
			}
		})
	}
}

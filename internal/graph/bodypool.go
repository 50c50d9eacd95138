package graph

import (
	"io"
	"sync"
)

// Response bodies are read into pooled buffers. A page of messages is a few
// KB per job and was the largest allocation of a busy worker, which sets how
// often the collector runs. A buffer goes back to the pool when nothing can
// refer to it any more: at once for error and non-JSON bodies (they are
// copied out), and through Response.Release for JSON left undecoded in Raw.
var bodyPool sync.Pool // *[]byte with len 0

// maxPooledBody keeps the rare large answer (a page of 1,000 messages) from
// being held by the pool.
const maxPooledBody = 64 << 10

// minBodyBuffer is the first buffer for a body of unknown length (chunked).
const minBodyBuffer = 8 << 10

// getBodyBuffer returns an empty buffer with room for hint bytes. A pooled
// buffer too small for the hint is left to the collector rather than put
// back, so that the pool drifts towards the sizes actually seen.
func getBodyBuffer(hint int) *[]byte {
	if hint <= maxPooledBody {
		if p, ok := bodyPool.Get().(*[]byte); ok && cap(*p) >= hint {
			*p = (*p)[:0]
			return p
		}
	}
	b := make([]byte, 0, max(hint, minBodyBuffer))
	return &b
}

func putBodyBuffer(p *[]byte) {
	if p == nil || cap(*p) > maxPooledBody {
		return
	}
	*p = (*p)[:0]
	bodyPool.Put(p)
}

// readInto reads r to its end into *p, growing it as needed.
func readInto(p *[]byte, r io.Reader) error {
	b := *p
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			*p = b
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

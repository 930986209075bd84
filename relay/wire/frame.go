package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFrameTooLarge is wrapped by ReadFrame when a frame's length prefix
// exceeds the reader's cap. Nothing of the claimed size was allocated.
var ErrFrameTooLarge = errors.New("wire: frame exceeds cap")

// maxFramePrefix is the most bytes a frame's length prefix may take: every
// cap is below 2^35, which needs at most 5 varint bytes.
const maxFramePrefix = 5

// frameChunk is how much ReadFrame allocates ahead of the data that actually
// arrived: a peer that claims a large frame and then stalls holds at most
// this much of our memory beyond what it sent.
const frameChunk = 64 << 10

// WriteFrame writes one frame: the minimal uvarint length of payload, then
// payload. It returns the bytes written.
func WriteFrame(w io.Writer, payload []byte) (int, error) {
	var pre [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(pre[:], uint64(len(payload)))
	buf := make([]byte, 0, n+len(payload))
	buf = append(buf, pre[:n]...)
	buf = append(buf, payload...)
	return w.Write(buf)
}

// AppendFrame appends one frame to b.
func AppendFrame(b, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads one frame of at most max payload bytes. The length prefix
// is checked against max before anything is allocated, and the payload
// buffer grows with the data received (frameChunk at a time), never by the
// claimed length alone. An empty frame is malformed. n is the number of
// bytes consumed from r, prefix included.
func ReadFrame(r io.Reader, max int) (payload []byte, n int, err error) {
	var one [1]byte
	var length uint64
	for i := 0; ; i++ {
		if i == maxFramePrefix {
			return nil, n, malformed("frame: length prefix over %d bytes", maxFramePrefix)
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, n, err
		}
		n++
		b := one[0]
		length |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return nil, n, malformed("frame: non-minimal length prefix")
			}
			break
		}
	}
	if length > uint64(max) {
		return nil, n, fmt.Errorf("%w: %d bytes claimed, cap %d", ErrFrameTooLarge, length, max)
	}
	if length == 0 {
		return nil, n, malformed("frame: empty")
	}
	size := int(length)
	buf := make([]byte, 0, min(size, frameChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		n += k
		if err != nil {
			if len(buf) == size {
				break
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, n, err
		}
	}
	return buf, n, nil
}

// FrameSize is the size on the wire of a frame carrying n payload bytes,
// prefix included.
func FrameSize(n int) int {
	if n <= 0 {
		return 0
	}
	return uvarintLen(uint64(n)) + n
}

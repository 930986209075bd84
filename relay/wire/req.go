package wire

import (
	"encoding/binary"
	"fmt"
)

// Tags of the request/response messages. Requests have the high bit clear,
// responses set.
const (
	TagGetTxs      byte = 0x01 // GetTxs
	TagGetBlock    byte = 0x02 // GetBlock
	TagGetBlockTxn byte = 0x03 // GetBlockTxn
	TagGetHeaders  byte = 0x04 // GetHeaders
	TagGetBlocks   byte = 0x05 // GetBlocks

	TagTxs      byte = 0x81 // Txs
	TagBlock    byte = 0x82 // Block
	TagBlockTxn byte = 0x83 // BlockTxn
	TagHeaders  byte = 0x84 // Headers
	TagBlocks   byte = 0x85 // Blocks
	TagError    byte = 0xff // Error
)

// Request is one of *GetTxs, *GetBlock, *GetBlockTxn, *GetHeaders,
// *GetBlocks, *GetTip, *GetPoolIDs, *GetSymbols or *GetTxsByPrefix.
type Request interface {
	// Tag returns the message's tag byte.
	Tag() byte
	// Encode returns the message payload (one frame's content).
	Encode() ([]byte, error)
}

// Response is one of *Txs, *Block, *BlockTxn, *Headers, *Blocks, *Tip,
// *PoolIDs or *Error.
type Response interface {
	// Tag returns the message's tag byte.
	Tag() byte
	// Encode returns the message payload (one frame's content).
	Encode() ([]byte, error)
}

// GetTxs asks for transaction bodies by id.
//
//	GetTxs = 0x01 uvarint(n) n×id[32]       1 <= n <= MaxTxsPerRequest
type GetTxs struct {
	IDs []ID
}

// Tag implements Request.
func (m *GetTxs) Tag() byte { return TagGetTxs }

// Encode implements Request.
func (m *GetTxs) Encode() ([]byte, error) {
	if len(m.IDs) == 0 || len(m.IDs) > MaxTxsPerRequest {
		return nil, fmt.Errorf("wire: GetTxs of %d ids (want 1..%d)", len(m.IDs), MaxTxsPerRequest)
	}
	b := make([]byte, 0, 3+len(m.IDs)*IDSize)
	b = append(b, TagGetTxs)
	b = binary.AppendUvarint(b, uint64(len(m.IDs)))
	for _, id := range m.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}

// GetBlock asks for a whole block by id.
//
//	GetBlock = 0x02 id[32]
type GetBlock struct {
	ID ID
}

// Tag implements Request.
func (m *GetBlock) Tag() byte { return TagGetBlock }

// Encode implements Request.
func (m *GetBlock) Encode() ([]byte, error) {
	return append([]byte{TagGetBlock}, m.ID[:]...), nil
}

// GetBlockTxn asks for some transactions of a block by their positions
// (BIP152's getblocktxn).
//
//	GetBlockTxn = 0x03 block[32] uvarint(n) n×uvarint(index gap)
//	              1 <= n <= MaxBlockTxs, indexes strictly increasing, < MaxBlockTxs
type GetBlockTxn struct {
	Block   ID
	Indexes []uint32
}

// Tag implements Request.
func (m *GetBlockTxn) Tag() byte { return TagGetBlockTxn }

// Encode implements Request.
func (m *GetBlockTxn) Encode() ([]byte, error) {
	if len(m.Indexes) == 0 {
		return nil, fmt.Errorf("wire: GetBlockTxn with no indexes")
	}
	if err := checkIndexes(m.Indexes, MaxBlockTxs); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+IDSize+4+2*len(m.Indexes))
	b = append(b, TagGetBlockTxn)
	b = append(b, m.Block[:]...)
	b = binary.AppendUvarint(b, uint64(len(m.Indexes)))
	return appendIndexes(b, m.Indexes), nil
}

// GetHeaders asks for the headers of the sender's best chain that follow the
// first locator id it knows (Bitcoin's getheaders), up to Stop (included;
// zero for none) and at most Max headers.
//
//	GetHeaders = 0x04 uvarint(n) n×id[32] stop[32] uvarint(max)
//	             1 <= n <= MaxLocatorIDs, 1 <= max <= MaxHeadersPerResponse
type GetHeaders struct {
	Locator []ID
	Stop    ID
	Max     uint32
}

// Tag implements Request.
func (m *GetHeaders) Tag() byte { return TagGetHeaders }

// Encode implements Request.
func (m *GetHeaders) Encode() ([]byte, error) {
	if len(m.Locator) == 0 || len(m.Locator) > MaxLocatorIDs {
		return nil, fmt.Errorf("wire: locator of %d ids (want 1..%d)", len(m.Locator), MaxLocatorIDs)
	}
	if m.Max == 0 || m.Max > MaxHeadersPerResponse {
		return nil, fmt.Errorf("wire: GetHeaders max %d (want 1..%d)", m.Max, MaxHeadersPerResponse)
	}
	b := make([]byte, 0, 1+2+(len(m.Locator)+1)*IDSize+3)
	b = append(b, TagGetHeaders)
	b = binary.AppendUvarint(b, uint64(len(m.Locator)))
	for _, id := range m.Locator {
		b = append(b, id[:]...)
	}
	b = append(b, m.Stop[:]...)
	return binary.AppendUvarint(b, uint64(m.Max)), nil
}

// GetBlocks asks for the blocks of the sender's best chain at heights
// Start..Start+Count-1.
//
//	GetBlocks = 0x05 start[u64] uvarint(count)     1 <= count <= MaxBlocksPerRange
type GetBlocks struct {
	Start uint64
	Count uint32
}

// Tag implements Request.
func (m *GetBlocks) Tag() byte { return TagGetBlocks }

// Encode implements Request.
func (m *GetBlocks) Encode() ([]byte, error) {
	if m.Count == 0 || m.Count > MaxBlocksPerRange {
		return nil, fmt.Errorf("wire: GetBlocks count %d (want 1..%d)", m.Count, MaxBlocksPerRange)
	}
	b := make([]byte, 0, 1+8+3)
	b = append(b, TagGetBlocks)
	b = binary.BigEndian.AppendUint64(b, m.Start)
	return binary.AppendUvarint(b, uint64(m.Count)), nil
}

// DecodeRequest decodes a request frame's payload.
func DecodeRequest(b []byte) (Request, error) {
	r := newReader(b)
	tag := r.Byte("request tag")
	if r.Err() != nil {
		return nil, r.Err()
	}
	var m Request
	switch tag {
	case TagGetTxs:
		n := r.Count(MaxTxsPerRequest, IDSize, "GetTxs count")
		if r.Err() == nil && n == 0 {
			r.Fail(malformed("GetTxs: no ids"))
		}
		if r.Err() != nil {
			return nil, r.Err()
		}
		q := &GetTxs{IDs: make([]ID, n)}
		for i := range q.IDs {
			q.IDs[i] = r.hash("GetTxs id")
		}
		m = q
	case TagGetBlock:
		m = &GetBlock{ID: r.hash("GetBlock id")}
	case TagGetBlockTxn:
		q := &GetBlockTxn{Block: r.hash("GetBlockTxn block")}
		n := r.Count(MaxBlockTxs, 1, "GetBlockTxn count")
		if r.Err() == nil && n == 0 {
			r.Fail(malformed("GetBlockTxn: no indexes"))
		}
		q.Indexes = r.indexes(n, MaxBlockTxs, "GetBlockTxn index")
		m = q
	case TagGetHeaders:
		n := r.Count(MaxLocatorIDs, IDSize, "GetHeaders locator count")
		if r.Err() == nil && n == 0 {
			r.Fail(malformed("GetHeaders: empty locator"))
		}
		if r.Err() != nil {
			return nil, r.Err()
		}
		q := &GetHeaders{Locator: make([]ID, n)}
		for i := range q.Locator {
			q.Locator[i] = r.hash("GetHeaders locator id")
		}
		q.Stop = r.hash("GetHeaders stop")
		q.Max = uint32(r.Uvarint(MaxHeadersPerResponse, "GetHeaders max"))
		if r.Err() == nil && q.Max == 0 {
			r.Fail(malformed("GetHeaders: max 0"))
		}
		m = q
	case TagGetBlocks:
		q := &GetBlocks{Start: r.U64("GetBlocks start")}
		q.Count = uint32(r.Uvarint(MaxBlocksPerRange, "GetBlocks count"))
		if r.Err() == nil && q.Count == 0 {
			r.Fail(malformed("GetBlocks: count 0"))
		}
		m = q
	case TagGetTip:
		m = &GetTip{}
	case TagGetPoolIDs:
		m = decodeGetPoolIDs(&r)
	case TagGetSymbols:
		m = decodeGetSymbols(&r)
	case TagGetTxsByPrefix:
		q := decodeGetTxsByPrefix(&r)
		if q == nil {
			return nil, r.Err()
		}
		m = q
	default:
		return nil, malformed("request: unknown tag %#x", tag)
	}
	if err := r.Done("request"); err != nil {
		return nil, err
	}
	return m, nil
}

// Txs answers GetTxs: Bodies[i] answers the request's IDs[i], nil when the
// server does not hold it. A response shorter than the request was cut at
// TxResponseSoftBytes; the client asks again for the rest.
//
//	Txs = 0x81 uvarint(n) n×(uvarint(len) body)     n <= MaxTxsPerRequest, len <= MaxTxBytes (0 = not found)
type Txs struct {
	Bodies [][]byte
}

// Tag implements Response.
func (m *Txs) Tag() byte { return TagTxs }

// Encode implements Response.
func (m *Txs) Encode() ([]byte, error) {
	if len(m.Bodies) > MaxTxsPerRequest {
		return nil, fmt.Errorf("wire: Txs of %d bodies exceeds %d", len(m.Bodies), MaxTxsPerRequest)
	}
	return appendBlobList(TagTxs, nil, m.Bodies, MaxTxBytes)
}

// Block answers GetBlock; Block is nil when the server does not hold it.
//
//	Block = 0x82 uvarint(len) block      len <= MaxBlockBytes (0 = not found)
type Block struct {
	Block []byte
}

// Tag implements Response.
func (m *Block) Tag() byte { return TagBlock }

// Encode implements Response.
func (m *Block) Encode() ([]byte, error) {
	if len(m.Block) > MaxBlockBytes {
		return nil, fmt.Errorf("wire: block of %d bytes exceeds %d", len(m.Block), MaxBlockBytes)
	}
	b := make([]byte, 0, 5+len(m.Block))
	b = append(b, TagBlock)
	return appendBlob(b, m.Block), nil
}

// BlockTxn answers GetBlockTxn with the requested transactions in request
// order (BIP152's blocktxn). Found is false when the server does not hold
// the block (Txs is then empty).
//
//	BlockTxn = 0x83 block[32] found[1] uvarint(n) n×(uvarint(len) tx)   n <= MaxBlockTxs, 1 <= len <= MaxTxBytes
type BlockTxn struct {
	Block ID
	Found bool
	Txs   [][]byte
}

// Tag implements Response.
func (m *BlockTxn) Tag() byte { return TagBlockTxn }

// Encode implements Response.
func (m *BlockTxn) Encode() ([]byte, error) {
	if len(m.Txs) > MaxBlockTxs {
		return nil, fmt.Errorf("wire: BlockTxn of %d txs exceeds %d", len(m.Txs), MaxBlockTxs)
	}
	if !m.Found && len(m.Txs) != 0 {
		return nil, fmt.Errorf("wire: BlockTxn not found but carries txs")
	}
	pre := make([]byte, 0, IDSize+1)
	pre = append(pre, m.Block[:]...)
	if m.Found {
		pre = append(pre, 1)
	} else {
		pre = append(pre, 0)
	}
	for _, tx := range m.Txs {
		if len(tx) == 0 {
			return nil, fmt.Errorf("wire: BlockTxn with an empty tx")
		}
	}
	return appendBlobList(TagBlockTxn, pre, m.Txs, MaxTxBytes)
}

// Headers answers GetHeaders: consecutive encoded headers, oldest first.
//
//	Headers = 0x84 uvarint(n) n×(uvarint(len) header)   n <= MaxHeadersPerResponse, 1 <= len <= MaxHeaderBytes
type Headers struct {
	Headers [][]byte
}

// Tag implements Response.
func (m *Headers) Tag() byte { return TagHeaders }

// Encode implements Response.
func (m *Headers) Encode() ([]byte, error) {
	if len(m.Headers) > MaxHeadersPerResponse {
		return nil, fmt.Errorf("wire: %d headers exceed %d", len(m.Headers), MaxHeadersPerResponse)
	}
	for _, h := range m.Headers {
		if len(h) == 0 {
			return nil, fmt.Errorf("wire: empty header")
		}
	}
	return appendBlobList(TagHeaders, nil, m.Headers, MaxHeaderBytes)
}

// Blocks answers GetBlocks: consecutive encoded blocks of the best chain,
// oldest first; fewer than asked when the chain ends or the response reached
// RangeResponseSoftBytes.
//
//	Blocks = 0x85 uvarint(n) n×(uvarint(len) block)   n <= MaxBlocksPerRange, 1 <= len <= MaxBlockBytes
type Blocks struct {
	Blocks [][]byte
}

// Tag implements Response.
func (m *Blocks) Tag() byte { return TagBlocks }

// Encode implements Response.
func (m *Blocks) Encode() ([]byte, error) {
	if len(m.Blocks) > MaxBlocksPerRange {
		return nil, fmt.Errorf("wire: %d blocks exceed %d", len(m.Blocks), MaxBlocksPerRange)
	}
	for _, blk := range m.Blocks {
		if len(blk) == 0 {
			return nil, fmt.Errorf("wire: empty block")
		}
	}
	return appendBlobList(TagBlocks, nil, m.Blocks, MaxBlockBytes)
}

// ErrCode says why a server refused a request.
type ErrCode byte

// Error codes.
const (
	// ErrCodeBadRequest: the request did not decode.
	ErrCodeBadRequest ErrCode = 1
	// ErrCodeBusy: the server is at its concurrent-request limit for this
	// peer or overall.
	ErrCodeBusy ErrCode = 2
	// ErrCodeInternal: the server failed to read its own store.
	ErrCodeInternal ErrCode = 3
)

// String names the code.
func (c ErrCode) String() string {
	switch c {
	case ErrCodeBadRequest:
		return "bad request"
	case ErrCodeBusy:
		return "busy"
	case ErrCodeInternal:
		return "internal"
	}
	return fmt.Sprintf("code %d", byte(c))
}

// Error is a server's refusal.
//
//	Error = 0xff code[1]
type Error struct {
	Code ErrCode
}

// Tag implements Response.
func (m *Error) Tag() byte { return TagError }

// Encode implements Response.
func (m *Error) Encode() ([]byte, error) { return []byte{TagError, byte(m.Code)}, nil }

func appendBlobList(tag byte, pre []byte, items [][]byte, max int) ([]byte, error) {
	size := 1 + len(pre) + 4
	for _, it := range items {
		if len(it) > max {
			return nil, fmt.Errorf("wire: item of %d bytes exceeds %d", len(it), max)
		}
		size += 4 + len(it)
	}
	b := make([]byte, 0, size)
	b = append(b, tag)
	b = append(b, pre...)
	b = binary.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = appendBlob(b, it)
	}
	return b, nil
}

// blobList reads n length-prefixed items; each takes at least one byte (its
// length), which bounds n by the bytes left.
func (r *reader) blobList(maxCount uint64, maxItem int, allowEmpty bool, what string) [][]byte {
	n := r.Count(maxCount, 1, what+" count")
	if r.Err() != nil || n == 0 {
		return nil
	}
	out := make([][]byte, n)
	for i := range out {
		v := r.Blob(maxItem, allowEmpty, what)
		if r.Err() != nil {
			return nil
		}
		if len(v) > 0 {
			out[i] = v
		}
	}
	return out
}

// DecodeResponse decodes a response frame's payload.
func DecodeResponse(b []byte) (Response, error) {
	r := newReader(b)
	tag := r.Byte("response tag")
	if r.Err() != nil {
		return nil, r.Err()
	}
	var m Response
	switch tag {
	case TagTxs:
		m = &Txs{Bodies: r.blobList(MaxTxsPerRequest, MaxTxBytes, true, "Txs body")}
	case TagBlock:
		v := r.Blob(MaxBlockBytes, true, "Block")
		if len(v) == 0 {
			v = nil
		}
		m = &Block{Block: v}
	case TagBlockTxn:
		q := &BlockTxn{Block: r.hash("BlockTxn block")}
		switch f := r.Byte("BlockTxn found"); {
		case r.Err() != nil:
		case f == 1:
			q.Found = true
		case f != 0:
			r.Fail(malformed("BlockTxn: found flag %d", f))
		}
		q.Txs = r.blobList(MaxBlockTxs, MaxTxBytes, false, "BlockTxn tx")
		if r.Err() == nil && !q.Found && len(q.Txs) != 0 {
			r.Fail(malformed("BlockTxn: not found but carries txs"))
		}
		m = q
	case TagHeaders:
		m = &Headers{Headers: r.blobList(MaxHeadersPerResponse, MaxHeaderBytes, false, "Headers header")}
	case TagBlocks:
		m = &Blocks{Blocks: r.blobList(MaxBlocksPerRange, MaxBlockBytes, false, "Blocks block")}
	case TagTip:
		m = decodeTip(&r)
	case TagPoolIDs:
		m = decodePoolIDs(&r)
	case TagSymbols:
		m = decodeSymbols(&r)
	case TagError:
		c := ErrCode(r.Byte("Error code"))
		if r.Err() == nil && (c < ErrCodeBadRequest || c > ErrCodeInternal) {
			r.Fail(malformed("Error: unknown code %d", c))
		}
		m = &Error{Code: c}
	default:
		return nil, malformed("response: unknown tag %#x", tag)
	}
	if err := r.Done("response"); err != nil {
		return nil, err
	}
	return m, nil
}

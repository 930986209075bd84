// Package wire holds the relay's vocabulary and message codecs: the item id
// (ID) and compact-block short ids (ShortIDKey), the gossip announcements
// (transaction id batches and the three block announcement modes), the
// request/response messages of the /rumor/<chain>/req/2.0.0 protocol, and
// the length-prefixed framing used on streams. Its caps (limits.go) are the
// format's fixed ceilings; an embedding chain's tighter limits live in
// relay.Config. It imports nothing of rumor's chain: its hostile-input
// reader (reader.go) is its own.
//
// Every input to a decoder is peer bytes and therefore hostile. Decoders:
//
//   - never panic;
//   - check every claimed count or length against a named cap and against
//     the bytes actually left before allocating anything sized by it;
//   - accept exactly one encoding of each message (minimal varints, no
//     trailing bytes), so a message can be hashed or compared byte-wise;
//   - return errors wrapping ErrMalformed (or ErrFrameTooLarge for framing),
//     so callers tell hostile input from local failures with errors.Is.
//
// Decoded byte slices (headers, bodies) alias the input buffer; callers that
// keep them past the buffer's lifetime must copy.
//
// Encoding conventions: integers in fixed width are big-endian; lengths and
// counts are minimal unsigned varints; strictly increasing index lists are
// differentially encoded as in BIP152 (each value is the gap to the previous
// one minus one).
//
// Concurrency: the package is stateless; all functions are safe for
// concurrent use.
package wire

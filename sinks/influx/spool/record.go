package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record on disk is a 12-byte header and a payload:
//
//	length  uint32 LE  payload bytes
//	crc     uint32 LE  CRC-32C of count||payload
//	count   uint32 LE  points (lines) in the payload
//	payload [length]byte
//
// The CRC covers the count so a torn or bit-flipped header is caught too.
const headerLen = 12

// MaxRecord bounds one record's payload, so a corrupt length field cannot
// make the reader allocate gigabytes.
const MaxRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors the record reader returns.
var (
	// ErrTorn is a record cut short, as a crash mid-write leaves it.
	ErrTorn = errors.New("spool: torn record")
	// ErrCorrupt is a record whose checksum or length is wrong.
	ErrCorrupt = errors.New("spool: corrupt record")
)

func recordCRC(count uint32, payload []byte) uint32 {
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], count)
	h := crc32.Update(0, castagnoli, c[:])
	return crc32.Update(h, castagnoli, payload)
}

// putHeader encodes the record header of payload into h.
func putHeader(h []byte, count uint32, payload []byte) {
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], recordCRC(count, payload))
	binary.LittleEndian.PutUint32(h[8:], count)
}

// appendRecord appends the encoded record to dst.
func appendRecord(dst []byte, count uint32, payload []byte) []byte {
	var h [headerLen]byte
	putHeader(h[:], count, payload)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// DecodeRecord decodes the record at the start of b. It returns the
// payload (aliasing b), the point count and the record's size in bytes.
// A record that runs past the end of b is ErrTorn; a bad length or
// checksum is ErrCorrupt.
func DecodeRecord(b []byte) (payload []byte, count uint32, size int, err error) {
	if len(b) < headerLen {
		return nil, 0, 0, ErrTorn
	}
	n := binary.LittleEndian.Uint32(b[0:])
	sum := binary.LittleEndian.Uint32(b[4:])
	count = binary.LittleEndian.Uint32(b[8:])
	if n > MaxRecord {
		return nil, 0, 0, fmt.Errorf("%w: length %d over %d", ErrCorrupt, n, MaxRecord)
	}
	if len(b)-headerLen < int(n) {
		return nil, 0, 0, ErrTorn
	}
	payload = b[headerLen : headerLen+int(n)]
	if recordCRC(count, payload) != sum {
		return nil, 0, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return payload, count, headerLen + int(n), nil
}

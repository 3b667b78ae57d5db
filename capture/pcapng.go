package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxBlock is the largest pcapng block accepted: a packet of MaxSnap bytes
// with room for its options.
const MaxBlock = MaxSnap + 64<<10

// pcapng block types and option codes that pcapgo reads, and so that
// ngGuard checks before it does.
const (
	ngSHB   = 0x0A0D0D0A
	ngIDB   = 1
	ngPB    = 2 // obsolete packet block
	ngSPB   = 3
	ngISB   = 5
	ngEPB   = 6
	ngMagic = 0x1A2B3C4D

	optTsresol  = 9
	optFilter   = 11
	optTsoffset = 14
)

// ngGuard passes a pcapng stream on to pcapgo's reader one whole block at a
// time, after checking what that reader trusts: pcapgo allocates a
// packet's captured length before it compares it with its block, divides
// by a timestamp resolution that an exponent can overflow to zero, and
// slices option values by the length they should have. A block that would
// make it do so ends the stream with an error that says which and where.
type ngGuard struct {
	r      io.Reader
	order  binary.ByteOrder // of the current section; nil before the first
	buf    []byte           // the block being passed on
	off    int64            // file offset of the next block
	err    error
	blocks int
}

func (g *ngGuard) Read(p []byte) (int, error) {
	if len(g.buf) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		if g.err = g.next(); g.err != nil && len(g.buf) == 0 {
			return 0, g.err
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// next reads and checks one block into g.buf.
func (g *ngGuard) next() error {
	var hdr [12]byte
	n, err := io.ReadFull(g.r, hdr[:8])
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return g.fail("block header cut after %d of 8 bytes", n)
	}
	typ := binary.LittleEndian.Uint32(hdr[:4])
	if typ == ngSHB {
		if _, err := io.ReadFull(g.r, hdr[8:12]); err != nil {
			return g.fail("section header cut short")
		}
		switch uint32(ngMagic) {
		case binary.LittleEndian.Uint32(hdr[8:12]):
			g.order = binary.LittleEndian
		case binary.BigEndian.Uint32(hdr[8:12]):
			g.order = binary.BigEndian
		default:
			return g.fail("section header with no byte-order magic")
		}
	} else if g.order == nil {
		return g.fail("not a pcapng file (it does not start with a section header)")
	} else {
		typ = g.order.Uint32(hdr[:4])
	}
	length := g.order.Uint32(hdr[4:8])
	min := map[uint32]uint32{ngSHB: 28, ngIDB: 20, ngPB: 32, ngSPB: 16, ngISB: 24, ngEPB: 32}[typ]
	if length < max(12, min) || length%4 != 0 || length > MaxBlock {
		return g.fail("block of type %d is %d bytes long (want a multiple of 4 from %d to %d)", typ, length, max(12, min), MaxBlock)
	}
	block := make([]byte, length)
	copy(block, hdr[:])
	head := 8
	if typ == ngSHB {
		head = 12
	}
	if got, err := io.ReadFull(g.r, block[head:]); err != nil {
		return g.fail("block of %d bytes cut after %d", length, head+got)
	}
	if g.order.Uint32(block[length-4:]) != length {
		return g.fail("block's trailing length %d is not its length %d", g.order.Uint32(block[length-4:]), length)
	}
	if err := g.check(typ, block); err != nil {
		return g.fail("%v", err)
	}
	g.buf = block
	g.off += int64(length)
	g.blocks++
	return nil
}

// check checks the body of a block whose length is known to be sound.
func (g *ngGuard) check(typ uint32, b []byte) error {
	body := b[8 : len(b)-4]
	switch typ {
	case ngSHB:
		return g.options(body[16:], nil)
	case ngIDB:
		return g.options(body[8:], func(code uint16, v []byte) error {
			switch code {
			case optTsresol:
				if len(v) < 1 {
					return errors.New("empty timestamp resolution")
				}
				// 10^-e or 2^-e seconds: pcapgo computes 10^e or 2^e in 64 bits.
				if e := v[0] & 0x7f; v[0]&0x80 == 0 && e > 18 || v[0]&0x80 != 0 && e > 62 {
					return fmt.Errorf("timestamp resolution exponent %d out of range", e)
				}
			case optTsoffset:
				if len(v) != 8 {
					return fmt.Errorf("timestamp offset of %d bytes, want 8", len(v))
				}
			case optFilter:
				if len(v) < 1 {
					return errors.New("empty filter option")
				}
			}
			return nil
		})
	case ngEPB, ngPB:
		caplen := g.order.Uint32(body[12:16])
		if caplen > uint32(len(body)-20) {
			return fmt.Errorf("packet claims %d captured bytes in a block with room for %d", caplen, len(body)-20)
		}
		pad := (caplen + 3) &^ 3
		return g.options(body[20+pad:], nil)
	case ngSPB:
		if origlen := g.order.Uint32(body[:4]); origlen > uint32(len(body)-4) {
			return fmt.Errorf("simple packet of %d bytes in a block with room for %d (cut simple packets are not read)", origlen, len(body)-4)
		}
	case ngISB:
		return g.options(body[12:], func(code uint16, v []byte) error {
			if code >= 2 && code <= 5 && len(v) != 8 {
				return fmt.Errorf("interface statistic %d of %d bytes, want 8", code, len(v))
			}
			return nil
		})
	}
	return nil
}

// options walks a block's options: each one inside the block, and check
// (if any) content with its value. They end with opt_endofopt or with the
// block.
func (g *ngGuard) options(b []byte, check func(code uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%d stray bytes after the options", len(b))
		}
		code, n := g.order.Uint16(b[:2]), int(g.order.Uint16(b[2:4]))
		if code == 0 {
			if n != 0 {
				return errors.New("end of options with a length")
			}
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			return fmt.Errorf("option %d of %d bytes runs past its block", code, n)
		}
		if check != nil {
			if err := check(code, b[4:4+n]); err != nil {
				return err
			}
		}
		b = b[4+padded:]
	}
	return nil
}

func (g *ngGuard) fail(format string, args ...any) error {
	return fmt.Errorf("pcapng block %d at byte %d: %s", g.blocks+1, g.off, fmt.Sprintf(format, args...))
}

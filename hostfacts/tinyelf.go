package hostfacts

import (
	"encoding/binary"
)

// tinyELF returns a minimal static Linux executable for arch that exits 0,
// or nil when kimia has none for it. Running it is the real test of
// emulation: it works wherever the node registered a QEMU handler with
// the F flag, also inside containers that cannot see binfmt_misc.
func tinyELF(arch string) []byte {
	switch arch {
	case "arm64":
		// mov x0, #0; mov x8, #93 (exit); svc #0
		return elf64(binary.LittleEndian, 183, 0, []byte{0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4})
	case "riscv64":
		// li a0, 0; li a7, 93 (exit); ecall
		return elf64(binary.LittleEndian, 243, 0, []byte{0x13, 0x05, 0x00, 0x00, 0x93, 0x08, 0xd0, 0x05, 0x73, 0x00, 0x00, 0x00})
	case "ppc64le":
		// li r0, 1 (exit); li r3, 0; sc
		return elf64(binary.LittleEndian, 21, 2, []byte{0x01, 0x00, 0x00, 0x38, 0x00, 0x00, 0x60, 0x38, 0x02, 0x00, 0x00, 0x44})
	case "s390x":
		// lghi %r2, 0; svc 1 (exit)
		return elf64(binary.BigEndian, 22, 0, []byte{0xa7, 0x29, 0x00, 0x00, 0x0a, 0x01})
	case "arm":
		// mov r0, #0; mov r7, #1 (exit); svc #0
		return elf32(binary.LittleEndian, 40, 0x05000000, []byte{0x00, 0x00, 0xa0, 0xe3, 0x01, 0x70, 0xa0, 0xe3, 0x00, 0x00, 0x00, 0xef})
	case "amd64":
		// mov edi, 0; mov eax, 60 (exit); syscall
		return elf64(binary.LittleEndian, 62, 0, []byte{0xbf, 0, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05})
	}
	return nil
}

const loadAddr = 0x400000

func elf64(bo binary.ByteOrder, machine uint16, flags uint32, code []byte) []byte {
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize, ehsize+phsize+len(code))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, data(bo), 1})
	bo.PutUint16(b[16:], 2) // ET_EXEC
	bo.PutUint16(b[18:], machine)
	bo.PutUint32(b[20:], 1)
	bo.PutUint64(b[24:], loadAddr+ehsize+phsize) // entry
	bo.PutUint64(b[32:], ehsize)                 // phoff
	bo.PutUint32(b[48:], flags)
	bo.PutUint16(b[52:], ehsize)
	bo.PutUint16(b[54:], phsize)
	bo.PutUint16(b[56:], 1)
	p := b[ehsize:]
	size := uint64(ehsize + phsize + len(code))
	bo.PutUint32(p[0:], 1) // PT_LOAD
	bo.PutUint32(p[4:], 5) // R+X
	bo.PutUint64(p[16:], loadAddr)
	bo.PutUint64(p[24:], loadAddr)
	bo.PutUint64(p[32:], size)
	bo.PutUint64(p[40:], size)
	bo.PutUint64(p[48:], 0x1000)
	return append(b, code...)
}

func elf32(bo binary.ByteOrder, machine uint16, flags uint32, code []byte) []byte {
	const ehsize, phsize = 52, 32
	b := make([]byte, ehsize+phsize, ehsize+phsize+len(code))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 1, data(bo), 1})
	bo.PutUint16(b[16:], 2)
	bo.PutUint16(b[18:], machine)
	bo.PutUint32(b[20:], 1)
	bo.PutUint32(b[24:], loadAddr+ehsize+phsize)
	bo.PutUint32(b[28:], ehsize)
	bo.PutUint32(b[36:], flags)
	bo.PutUint16(b[40:], ehsize)
	bo.PutUint16(b[42:], phsize)
	bo.PutUint16(b[44:], 1)
	p := b[ehsize:]
	size := uint32(ehsize + phsize + len(code))
	bo.PutUint32(p[0:], 1)
	bo.PutUint32(p[8:], loadAddr)
	bo.PutUint32(p[12:], loadAddr)
	bo.PutUint32(p[16:], size)
	bo.PutUint32(p[20:], size)
	bo.PutUint32(p[24:], 5)
	bo.PutUint32(p[28:], 0x1000)
	return append(b, code...)
}

func data(bo binary.ByteOrder) byte {
	if bo == binary.BigEndian {
		return 2
	}
	return 1
}

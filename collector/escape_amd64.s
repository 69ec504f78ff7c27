//go:build amd64 && !purego

#include "textflag.h"

DATA quotes<>+0(SB)/8, $0x2222222222222222
DATA quotes<>+8(SB)/8, $0x2222222222222222
GLOBL quotes<>(SB), RODATA|NOPTR, $16
DATA backslashes<>+0(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA backslashes<>+8(SB)/8, $0x5c5c5c5c5c5c5c5c
GLOBL backslashes<>(SB), RODATA|NOPTR, $16

// func escapeWordsSSSE3(dst, src *byte, n int, tables *escapeTables) (words, written int)
TEXT ·escapeWordsSSSE3(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ tables+24(FP), R8
	MOVQ DI, R12                 // start of dst
	XORQ R9, R9                  // words done
	MOVOU quotes<>(SB), X6
	MOVOU backslashes<>(SB), X7
	MOVQ $0x2020202020202020, R10
	MOVQ $0x8080808080808080, R11

loop:
	CMPQ R9, CX
	JGE  done
	MOVQ (SI), AX
	// Any byte < 0x20 or >= 0x80: stop (((x - 0x20..) &^ x) | x) & 0x80..
	MOVQ AX, BX
	SUBQ R10, BX
	MOVQ AX, DX
	NOTQ DX
	ANDQ DX, BX
	ORQ  AX, BX
	TESTQ R11, BX
	JNZ  done
	MOVQ AX, X0
	MOVO X0, X1
	PCMPEQB X6, X1
	MOVO X0, X2
	PCMPEQB X7, X2
	POR  X2, X1
	PMOVMSKB X1, BX
	ANDQ $0xff, BX
	MOVQ BX, DX
	SHLQ $4, DX
	MOVOU (R8)(DX*1), X3         // shuffle[m]
	PSHUFB X3, X0
	MOVOU 4096(R8)(DX*1), X4     // slashes[m]
	POR  X4, X0
	MOVOU X0, (DI)
	MOVBQZX 8192(R8)(BX*1), DX   // length[m]
	ADDQ DX, DI
	ADDQ $8, SI
	INCQ R9
	JMP  loop

done:
	MOVQ R9, words+32(FP)
	SUBQ R12, DI
	MOVQ DI, written+40(FP)
	RET

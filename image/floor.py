"""The floor of the boot-time benchmark: the same kernel with an initramfs whose /init ends the VM at once.

The difference between this and the appliance's boot is what Python, the trimmed stdlib and the
appliance cost; what remains is QEMU and the kernel. The init is a 149-byte static x86-64 ELF written
here byte by byte (no compiler, no libc): it calls reboot(2) with RB_AUTOBOOT, which ends QEMU under
-no-reboot, and exits if that fails.
"""

from __future__ import annotations

import struct

from image import cpio

BASE = 0x400000
HEADERS = 64 + 56
CODE = bytes.fromhex(
    "b8a9000000"  # mov eax, 169 (SYS_reboot)
    "bfaddee1fe"  # mov edi, LINUX_REBOOT_MAGIC1
    "be69191228"  # mov esi, LINUX_REBOOT_MAGIC2
    "ba67452301"  # mov edx, LINUX_REBOOT_CMD_RESTART (RB_AUTOBOOT)
    "0f05"  # syscall
    "b83c000000"  # mov eax, 60 (SYS_exit)
    "31ff"  # xor edi, edi
    "0f05"  # syscall
)


def elf() -> bytes:
    size = HEADERS + len(CODE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, BASE + HEADERS, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return header + program + CODE


def archive() -> bytes:
    return cpio.serialize([
        cpio.regular("init", elf(), 0o755),
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1),
    ])

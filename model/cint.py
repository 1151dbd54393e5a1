"""C integer semantics for the model (arm64, LP64).

Python integers never wrap, so every place where the kernel relies on (or is bitten by) a C
conversion calls one of these helpers explicitly.  The names say which C type the result has.
"""

from __future__ import annotations

U64_MASK = (1 << 64) - 1
U32_MASK = (1 << 32) - 1
INT_MIN = -(1 << 31)
INT_MAX = (1 << 31) - 1


def u64(x: int) -> int:
    """`u64`, `unsigned long`, `size_t`, `phys_addr_t`: reduce modulo 2^64."""
    return x & U64_MASK


size_t = u64
ulong = u64


def u32(x: int) -> int:
    return x & U32_MASK


def s64(x: int) -> int:
    """Reinterpret the low 64 bits as a signed `s64` / `long`."""
    x &= U64_MASK
    return x - (1 << 64) if x >> 63 else x


def c_int(x: int) -> int:
    """Convert to a 32-bit `int` the way gcc does on arm64 (truncate, two's complement)."""
    x &= U32_MASK
    return x - (1 << 32) if x >> 31 else x


def min_t_int(a: int, b: int) -> int:
    """`min_t(int, a, b)`: both operands are cast to int before comparing."""
    return min(c_int(a), c_int(b))


def min_t_ulong(a: int, b: int) -> int:
    """`min_t(unsigned long, a, b)`: both operands are cast to unsigned long first."""
    return min(u64(a), u64(b))


def sar64(x: int, n: int) -> int:
    """`(s64)x >> n`: arithmetic right shift of the 64-bit value."""
    return s64(x) >> n


def ffs0(x: int) -> int:
    """The kernel's `__ffs`: index of the lowest set bit (undefined for 0; we raise)."""
    if x == 0:
        raise ValueError("__ffs(0) is undefined")
    return (x & -x).bit_length() - 1


def fls0(x: int) -> int:
    """The kernel's `__fls`: index of the highest set bit (undefined for 0; we raise)."""
    if x == 0:
        raise ValueError("__fls(0) is undefined")
    return x.bit_length() - 1


def genmask(h: int, l: int) -> int:  # noqa: E741 - the kernel's name
    """`GENMASK_ULL(h, l)`."""
    return ((1 << (h + 1)) - 1) & ~((1 << l) - 1) & U64_MASK


def check_add_overflow_u64(a: int, b: int) -> bool:
    """`check_add_overflow` on two `size_t`/`unsigned long` operands."""
    return a + b > U64_MASK


def errno_name(ret: int) -> str:
    """A readable name for a negative errno return (used in traces)."""
    for name, value in ERRNO.items():
        if ret == -value:
            return f"-{name}"
    return str(ret)


ERRNO = {"EPERM": 1, "ENOENT": 2, "EIO": 5, "ENOMEM": 12, "EFAULT": 14, "EEXIST": 17,
         "ENODEV": 19, "EINVAL": 22, "ERANGE": 34, "EOPNOTSUPP": 95, "ETIMEDOUT": 110}
ENOENT = ERRNO["ENOENT"]
EIO = ERRNO["EIO"]
ENOMEM = ERRNO["ENOMEM"]
EEXIST = ERRNO["EEXIST"]
ENODEV = ERRNO["ENODEV"]
EINVAL = ERRNO["EINVAL"]
ERANGE = ERRNO["ERANGE"]

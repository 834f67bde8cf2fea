"""Sizes as users write them: 4096 (MiB for memory), '4G', '512M', '8GiB' -> whole units."""

import re

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.I)
_FACTOR_MIB = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def to_mib(value, bare_unit: str = "M") -> int:
    """An int is in `bare_unit`; a string may carry its own unit. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("a size, not a boolean")
    if isinstance(value, int):
        number, unit = value, bare_unit
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size; write e.g. 4096, '512M' or '4G'")
        number, unit = int(match.group(1)), (match.group(2) or bare_unit).upper()
    else:
        raise ValueError(f"{value!r} is not a size; write e.g. 4096, '512M' or '4G'")
    mib = number * _FACTOR_MIB[unit]
    if mib != int(mib):
        raise ValueError(f"{value!r} is not a whole number of MiB")
    return int(mib)


def to_gib(value) -> int:
    """Disk sizes: an int is GiB; a string may carry a unit and must be whole GiB."""
    mib = to_mib(value, bare_unit="G")
    if mib % 1024:
        raise ValueError(f"{value!r} is not a whole number of GiB; write e.g. 8 or '8G'")
    return mib // 1024

"""The binary reader against the layout the codec's docstring promises, written out here
independently: unsigned LEB128, at most 10 bytes, masked to 64 bits, a missing byte read as 0."""

from hypothesis import given
from hypothesis import strategies as st

from fuzz.lang import codec


def _spec_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`, by the letter of the layout."""
    value = 0
    for i in range(10):
        present = pos < len(data)
        b = data[pos] if present else 0
        if present:
            pos += 1
        value += (b % 128) * 2 ** (7 * i)
        if b < 128:
            break
    return value % 2 ** 64, pos


@given(st.binary(max_size=40), st.integers(0, 45))
def test_varint_reads_what_the_layout_says(data, start):
    r = codec.Reader(data)
    r.pos = start
    want, after = _spec_varint(data, start)
    assert r.varint() == want
    assert r.pos == max(after, start)


@given(st.integers(0, 2 ** 64 - 1))
def test_varint_round_trips_every_u64(n):
    r = codec.Reader(codec._varint(n))
    assert r.varint() == n and r.exhausted


def test_an_overlong_varint_stops_after_ten_bytes():
    r = codec.Reader(b"\xff" * 12 + b"\x05")
    assert r.varint() == 2 ** 64 - 1 and r.pos == 10

"""The watch stream's byte pipe: every byte written reaches the client once, in order, whatever
sizes the client reads in, and ``pending`` counts what is still unread."""

import simpy
from hypothesis import given
from hypothesis import strategies as st

from fakecluster.kernel.engine import Kernel
from fakecluster.api.stream import Stream

payloads = st.lists(st.binary(min_size=1, max_size=300), max_size=12)
read_sizes = st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=8)


def chunked(payloads: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


@given(payloads, read_sizes)
def test_reads_of_any_size_return_the_chunked_body_once(written, sizes):
    stream = Stream(Kernel(simpy.Environment()))
    for payload in written:
        stream.write_chunk(payload)
    stream.end()
    expected = chunked(written)
    assert stream.pending == len(expected)
    received = bytearray()
    for turn in range(len(expected) + 1):  # every read but the last returns at least one byte
        target = bytearray(sizes[turn % len(sizes)])
        count = stream.read_into(memoryview(target), None)
        if count == 0:
            break
        received += target[:count]
        assert stream.pending == len(expected) - len(received)
    assert bytes(received) == expected
    assert stream.read_into(memoryview(bytearray(1)), None) == 0


def test_nothing_is_written_after_the_end_or_a_client_close():
    stream = Stream(Kernel(simpy.Environment()))
    stream.write_chunk(b"one")
    stream.end()
    stream.write_chunk(b"late")
    stream.write_raw(b"later")
    assert stream.pending == len(chunked([b"one"]))
    closed = Stream(Kernel(simpy.Environment()))
    closed.close_from_client()
    closed.write_chunk(b"unread")
    assert closed.pending == 0

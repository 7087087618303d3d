"""Cold watch-cache changes: their objects kept as compressed JSON instead of dicts.

The watch cache holds every change of the last 75 seconds, up to 102,400 of them: at 100,000
tasks that window is the largest thing in the process (each version of a pod is about 2.5 KB
of dicts of its own). Only the newest changes are read as they happen (the watchers' fan-out,
the in-process listeners); the rest is read again only when a watch resumes from an old
resourceVersion or a list asks for a past one. So a change that has gone cold keeps its object
as a zstd frame, compressed against a dictionary taken from the first object of the store that
went cold (most of a pod's bytes are the same keys and defaults as any other's): a few hundred
bytes instead of the dicts, for a few microseconds, read back as fast. (The state before the
change is the object of the change that wrote it: the store links the two.)

A frame holds the object's JSON exactly as the watch event carries it (orjson's, as
``wire.dumps``), so a cold change's event bytes are those of the hot change it was.
"""

from __future__ import annotations

import orjson
import zstandard

HOT_CHANGES = 4096   # the newest changes of a store stay dicts: fan-out and listeners read those
LEVEL = 1            # zstd's fastest: the window is rewritten every 75 s at scale


class ColdCodec:
    """Packs (object, previous state) into one frame; built from a store's first cold object."""

    def __init__(self, sample: bytes):
        dictionary = zstandard.ZstdCompressionDict(sample, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        dictionary.precompute_compress(level=LEVEL)
        self._packer = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary, write_checksum=False,
                                                write_dict_id=False)
        self._unpacker = zstandard.ZstdDecompressor(dict_data=dictionary)

    @classmethod
    def for_object(cls, obj: dict) -> "ColdCodec":
        return cls(orjson.dumps(obj))

    def pack(self, obj: dict) -> bytes:
        # wire.dumps is orjson's: the frame holds the watch event's object bytes
        frame = self._packer.compress(orjson.dumps(obj))
        # copied: python-zstandard's result keeps the allocation of the worst case (about 5 KB)
        return bytes(memoryview(frame))

    def object_json(self, frame: bytes) -> bytes:
        return self._unpacker.decompress(frame)

    def unpack(self, frame: bytes) -> dict:
        return orjson.loads(self._unpacker.decompress(frame))

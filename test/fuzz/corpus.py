"""Hostile and broken checkpoint and export files for the fuzz runner (run with scripts/python).

    corpus.py --out DIR --weights N --models M [--seed S]
    corpus.py --craft NAME --out FILE      one named case of the findings the tests pin (see CRAFTED)

Writes N weights files and M model exports into DIR and a DIR/cases.json that lists them: truncations, flipped bytes
with and without a rebuilt zip (so that the CRC does or does not give them away), storage records of the wrong size,
strides that do not match sizes, impossible sizes and offsets, deep nesting, MARK amplification, bad memo use,
legacy-format counts, and exports with out-of-range metadata or short tensor records. Every case is made from a
valid file of the bundled RAFT-S architecture, so a file that survives its mutation loads for real.
"""
import argparse
import collections
import io
import json
import os
import pickle
import random
import re
import struct
import zipfile

import torch

from flowlib import models

ARCH = "raft-small"
DTYPES = {torch.float32: "FloatStorage", torch.float64: "DoubleStorage", torch.float16: "HalfStorage",
          torch.int64: "LongStorage", torch.int32: "IntStorage", torch.uint8: "ByteStorage"}


class _Storage:
    """A storage as torch.save refers to it: by key, with a declared element count."""

    def __init__(self, key: str, type_name: str, count: int):
        self.key, self.type_name, self.count = key, type_name, count


class _Tensor:
    """A tensor record with any offset, sizes and strides, pickled the way torch.save pickles tensors."""

    def __init__(self, storage: _Storage, offset: int, sizes, strides):
        self.storage, self.offset, self.sizes, self.strides = storage, offset, tuple(sizes), tuple(strides)

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (self.storage, self.offset, self.sizes, self.strides, False,
                                                 collections.OrderedDict())


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.count)
        return None


def _pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


class StateDictFile:
    """A state dict as records: the pickle's tensors and each storage's bytes, which cases then bend."""

    def __init__(self, state: dict, prefix: str = "module."):
        self.tensors = collections.OrderedDict()
        self.data = {}
        for index, (name, tensor) in enumerate(state.items()):
            tensor = tensor.contiguous()
            key = str(index)
            storage = _Storage(key, DTYPES[tensor.dtype], tensor.numel())
            self.tensors[prefix + name] = _Tensor(storage, 0, tensor.shape, tensor.stride())
            self.data[key] = tensor.numpy().tobytes()

    def pickle(self) -> bytes:
        return _pickle(self.tensors)

    def zip(self, pickle_bytes: bytes = None, data: dict = None) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle_bytes if pickle_bytes is not None else self.pickle())
            for key, blob in (data if data is not None else self.data).items():
                z.writestr(f"archive/data/{key}", blob)
            z.writestr("archive/version", b"3\n")
        return buffer.getvalue()

    def legacy(self, counts: dict = None) -> bytes:
        out = io.BytesIO()
        for header in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)
        out.write(self.pickle())
        keys = list(self.data)
        pickle.dump(keys, out, protocol=2)
        for key in keys:
            blob = self.data[key]
            count = (counts or {}).get(key, len(blob) // _element_size(self, key))
            out.write(struct.pack("<q", count))
            out.write(blob)
        return out.getvalue()


def _element_size(file: StateDictFile, key: str) -> int:
    for tensor in file.tensors.values():
        if tensor.storage.key == key:
            return {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "LongStorage": 8, "IntStorage": 4,
                    "ByteStorage": 1}[tensor.storage.type_name]
    return 4


def _flip(data: bytes, rng: random.Random, count: int, lo: int = 0, hi: int = None) -> bytes:
    data = bytearray(data)
    hi = len(data) if hi is None else hi
    for _ in range(count):
        data[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    return bytes(data)


def _splice(data: bytes, rng: random.Random) -> bytes:
    """Inserts, deletes or overwrites a short run of bytes."""
    at = rng.randrange(len(data))
    run = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    choice = rng.randrange(3)
    if choice == 0:
        return data[:at] + run + data[at:]
    if choice == 1:
        return data[:at] + data[at + len(run):]
    return data[:at] + run + data[at + len(run):]


def _nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return b"\x80\x02" + opener * depth + closer * depth + b"."


def weights_cases(base: StateDictFile, rng: random.Random):
    """(name, bytes, what) for one weights case, chosen at random."""
    names = list(base.tensors)
    keys = list(base.data)
    kind = rng.randrange(17)
    if kind == 0:
        return "valid", base.zip(), "the checkpoint as it is"
    if kind == 1:
        blob = base.zip()
        return "truncated-zip", blob[:rng.randrange(len(blob))], "a zip checkpoint cut short"
    if kind == 2:
        blob = base.legacy()
        return "truncated-legacy", blob[:rng.randrange(len(blob))], "a legacy checkpoint cut short"
    if kind == 3:
        blob = base.zip()
        return "flipped-zip", _flip(blob, rng, rng.randint(1, 16)), "flipped bits, zip not rebuilt (CRC stale)"
    if kind == 4:
        blob = base.legacy()
        return ("flipped-legacy", _flip(blob, rng, rng.randint(1, 16), 0, 4096),
                "flipped bits in a legacy file's pickles")
    if kind == 5:
        pickled = base.pickle()
        for _ in range(rng.randint(1, 4)):
            pickled = _splice(pickled, rng) if rng.random() < 0.5 else _flip(pickled, rng, 1)
        return "pickle-mutated", base.zip(pickle_bytes=pickled), "a mutated pickle in a rebuilt zip (CRC valid)"
    if kind == 6:
        data = dict(base.data)
        key = rng.choice(keys)
        size = len(data[key])
        data[key] = data[key][:rng.choice([1, 2, 3, max(0, size - rng.randint(1, 3)), size // 2])] \
            if rng.random() < 0.7 else data[key] + b"\0" * rng.randint(1, 3)
        return "storage-resized", base.zip(data=data), "a storage record of the wrong size (CRC valid)"
    if kind == 7:
        file = StateDictFile({}, prefix="")
        file.tensors, file.data = collections.OrderedDict(base.tensors), dict(base.data)
        name = rng.choice(names)
        t = file.tensors[name]
        mutation = rng.randrange(7)
        sizes, strides, offset = list(t.sizes), list(t.strides), t.offset
        if mutation == 0:
            strides = strides[:-1] if strides else [1]
        elif mutation == 1:
            strides = []
        elif mutation == 2 and sizes:
            sizes[rng.randrange(len(sizes))] = -rng.randint(1, 5)
        elif mutation == 3:
            sizes = [2 ** 40, 2 ** 40] + sizes[2:]
            strides = [2 ** 40, 1] + strides[2:]
        elif mutation == 4:
            offset = rng.choice([-1, 2 ** 62, t.storage.count, t.storage.count - 1])
        elif mutation == 5 and strides:
            strides[rng.randrange(len(strides))] = rng.choice([-1, 2 ** 62, 10 ** 6])
        else:
            sizes, strides = sizes + [1] * 20, strides + [1] * 20
        file.tensors[name] = _Tensor(t.storage, offset, sizes, strides)
        return "tensor-record", file.zip(), "sizes, strides or offset that do not fit (CRC valid)"
    if kind == 8:
        file = StateDictFile({}, prefix="")
        file.tensors, file.data = collections.OrderedDict(base.tensors), dict(base.data)
        name = rng.choice(names)
        t = file.tensors[name]
        declared = rng.choice([t.storage.count + 1, max(0, t.storage.count - 1), 2 ** 62, -5])
        file.tensors[name] = _Tensor(_Storage(t.storage.key, t.storage.type_name, declared), 0, t.sizes, t.strides)
        return "storage-count", file.zip(), "a storage whose declared element count is wrong"
    if kind == 9:
        data = dict(base.data)
        del data[rng.choice(keys)]
        return "storage-missing", base.zip(data=data), "a storage record left out"
    if kind == 10:
        depth = rng.choice([1000, 10_000, 1_000_000])
        opener, closer = rng.choice([(b"]", b""), (b"(", b"t"), (b"}", b""), (b"(", b"l")])
        if opener == b"]":
            body = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
        elif opener == b"}":
            body = b"\x80\x02" + b"}K\x01" * depth + b"s" * (depth - 1) + b"."
        else:
            body = _nested(depth, opener, closer)
        blob = base.zip(pickle_bytes=body) if rng.random() < 0.8 else body
        return "deep-nesting", blob, f"containers nested {depth} deep"
    if kind == 11:
        size = rng.choice([1 << 20, 20 << 20])
        body = b"\x80\x02" + b"(" * size + b"."
        return "mark-amplification", base.zip(pickle_bytes=body) if rng.random() < 0.5 else body, \
            f"a run of {size >> 20} MB of MARK opcodes"
    if kind == 12:
        choice = rng.randrange(4)
        if choice == 0:
            body = b"\x80\x02j\xff\xff\xff\x7f."              # LONG_BINGET of a memo key never set
        elif choice == 1:
            body = b"\x80\x02N" + b"r\xff\xff\xff\xff" * 100000 + b"."  # one object memoized 100,000 times
        elif choice == 2:
            body = b"\x80\x02]q\x00h\x00a" * 2 + b"h\x00" * 1000 + b"a" * 999 + b"."  # a list inside itself
        else:
            body = b"\x80\x02X\xff\xff\xff\x7fabc."           # a string longer than the file
        return "memo-and-lengths", base.zip(pickle_bytes=body), "bad memo use or impossible lengths"
    if kind == 13:
        keys_list = list(base.data)
        counts = {rng.choice(keys_list): rng.choice([-1, 2 ** 62, 2 ** 61 + 1, 10 ** 12])}
        return "legacy-counts", base.legacy(counts=counts), "a legacy file whose storage counts are impossible"
    if kind == 14:
        garbage = bytes(rng.randrange(256) for _ in range(rng.randint(0, 4096)))
        prefix = rng.choice([b"", b"PK\x03\x04", b"\x80\x02", b"PK\x05\x06"])
        return "garbage", prefix + garbage, "random bytes"
    if kind == 15:
        body = _pickle(collections.OrderedDict([(1, 2), ("x", [1, 2, 3]), ("y", {"a": None})]))
        return "not-a-state-dict", base.zip(pickle_bytes=body), "a pickle of something else"
    blob = bytearray(base.zip())
    # Shift a local header's extra-field length, so that a reader trusting it reads from the wrong offset.
    at = blob.find(b"PK\x03\x04", rng.randrange(1, len(blob) // 2))
    if at < 0:
        at = blob.find(b"PK\x03\x04")
    shifted = (struct.unpack_from("<H", blob, at + 28)[0] + rng.choice([1, 2, 4, 64])) % 65536
    struct.pack_into("<H", blob, at + 28, shifted)
    return "local-header-shifted", bytes(blob), "a local header whose length is shifted"


def export_bytes(model, info) -> bytes:
    models.attach_metadata(model, info)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    return buffer.getvalue()


def rebuild(blob: bytes, mutate) -> bytes:
    """The same zip with `mutate(name, data) -> data` applied to each member, written again with valid CRCs."""
    source = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            data = mutate(info.filename, source.read(info))
            if data is not None:
                z.writestr(info, data)
    return out.getvalue()


def model_cases(base: bytes, metadata_variants, rng: random.Random):
    kind = rng.randrange(9)
    if kind == 0:
        return "valid", base, "the export as it is"
    if kind == 1:
        return "truncated", base[:rng.randrange(len(base))], "an export cut short"
    if kind == 2:
        return "flipped", _flip(base, rng, rng.randint(1, 16)), "flipped bits, zip not rebuilt (CRC stale)"
    if kind in (3, 4, 5):
        targets = {3: "data.pkl", 4: "constants.pkl", 5: "code/"}[kind]

        def mutate(name, data):
            if targets in name and data:
                for _ in range(rng.randint(1, 3)):
                    data = _splice(data, rng) if rng.random() < 0.5 else _flip(data, rng, 1)
            return data
        return f"rebuilt-{targets.strip('/').replace('.pkl', '')}", rebuild(base, mutate), \
            f"mutated {targets} in a rebuilt zip (CRC valid)"
    if kind == 6:
        def mutate(name, data):
            if "/data/" in name and len(data) > 64 and rng.random() < 0.3:
                return data[:rng.choice([1, 3, len(data) - rng.randint(1, 8), len(data) // 2])]
            return data
        return "storage-short", rebuild(base, mutate), "tensor records shorter than their tensors (CRC valid)"
    if kind == 7:
        def mutate(name, data):
            if "/data/" in name and len(data) >= 4 and rng.random() < 0.2:
                return _flip(data, rng, 4)
            return data
        return "tensor-bits", rebuild(base, mutate), "flipped bits in weights (CRC valid): loads, may give NaN"
    label, blob = metadata_variants[rng.randrange(len(metadata_variants))]
    return f"metadata-{label}", blob, f"out-of-range metadata: {label}"


def _base():
    torch.manual_seed(0)
    model = models.build(ARCH).eval()
    return model, StateDictFile(model.state_dict())


def _with_tensor(file: StateDictFile, name: str, **changes) -> StateDictFile:
    out = StateDictFile({}, prefix="")
    out.tensors, out.data = collections.OrderedDict(file.tensors), dict(file.data)
    t = out.tensors[name]
    out.tensors[name] = _Tensor(t.storage, changes.get("offset", t.offset), changes.get("sizes", t.sizes),
                                changes.get("strides", t.strides))
    return out


def _export_variant(model, **attributes) -> bytes:
    info = models.metadata(ARCH, name="crafted", trained_on="random", weights_source="random")
    models.attach_metadata(model, info)
    for key, value in attributes.items():
        setattr(model, key, value)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    return buffer.getvalue()


def craft(name: str) -> bytes:
    """The files behind each finding the tests pin, by name."""
    model, base = _base()
    first = next(iter(base.tensors))
    key = base.tensors[first].storage.key
    if name == "storage-1-byte":
        return base.zip(data={**base.data, key: base.data[key][:1]})
    if name == "storage-short-by-2":
        return base.zip(data={**base.data, key: base.data[key][:-2]})
    if name == "strides-short":
        return _with_tensor(base, first, strides=base.tensors[first].strides[:-1]).zip()
    if name == "strides-empty":
        return _with_tensor(base, first, strides=()).zip()
    if name.startswith("nested-"):
        depth = 1_000_000
        body = {"nested-lists": b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".",
                "nested-tuples": _nested(depth, b"(", b"t"),
                "nested-dicts": b"\x80\x02" + b"}K\x01" * depth + b"s" * (depth - 1) + b"."}[name]
        return base.zip(pickle_bytes=body)
    if name == "marks-20mb":
        return base.zip(pickle_bytes=b"\x80\x02" + b"(" * (20 << 20) + b".")
    if name == "flipped-tensor-data":
        blob = bytearray(base.zip())
        at = blob.rfind(base.data[key][:16])
        blob[at + 5] ^= 0x40
        return bytes(blob)
    if name == "local-header-shifted":
        blob = bytearray(base.zip())
        at = blob.find(b"PK\x03\x04", 1)
        struct.pack_into("<H", blob, at + 28, struct.unpack_from("<H", blob, at + 28)[0] + 4)
        return bytes(blob)
    if name == "legacy-huge-count":
        return base.legacy(counts={key: 2 ** 61 + 1})
    if name == "export-stride-0":
        return _export_variant(model, flow_stride=0)
    if name == "export-stride-huge":
        return _export_variant(model, flow_stride=99999999999)
    if name == "export-min-size-20000":
        return _export_variant(model, flow_min_size=20000)
    if name == "export-iterations-1e9":
        return _export_variant(model, flow_default_iterations=10 ** 9)
    if name == "export-storage-short":
        return rebuild(_export_variant(model), lambda n, d: d[:len(d) - 8] if n.endswith("/data/0") else d)
    if name == "export-view-past-storage":
        # Storage '0' declares half its elements and its record holds just those: consistent with each other, but
        # the tensor built on it still reaches its full size.
        def halve(member, data):
            if member.endswith("/data.pkl"):
                at = re.search(rb"X\x01\x00\x00\x000(?:q.)?X\x03\x00\x00\x00cpu(?:q.)?M", data, re.S).end()
                count = struct.unpack_from("<H", data, at)[0]
                return data[:at] + struct.pack("<H", count // 2) + data[at + 2:]
            if member.endswith("/data/0"):
                return data[:len(data) // 2]
            return data
        return rebuild(_export_variant(model), halve)
    if name == "export-debug-memo-huge":
        # A source-range pickle beside the code whose first memo key is 400 million: LibTorch's unpickler reserves
        # twice as many 16-byte slots (12.8 GB) before it looks further.
        def renumber(member, data):
            if member.endswith(".debug_pkl") and b"FORMAT_WITH_STRING_TABLEq\x00" in data:
                return data.replace(b"FORMAT_WITH_STRING_TABLEq\x00",
                                    b"FORMAT_WITH_STRING_TABLEr" + struct.pack("<I", 400_000_000), 1)
            return data
        return rebuild(_export_variant(model), renumber)
    if name == "export-nan-weights":
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(float("nan"))
        return _export_variant(model)
    raise SystemExit(f"unknown case {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", type=int, default=100)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--craft", metavar="NAME", help="write one named case to --out (a file) and exit")
    args = parser.parse_args()
    if args.craft:
        with open(args.out, "wb") as f:
            f.write(craft(args.craft))
        return
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    model = models.build(ARCH).eval()
    state = StateDictFile(model.state_dict())
    info = models.metadata(ARCH, name="fuzz", trained_on="random", weights_source="random")
    base_export = export_bytes(model, info)
    variants = []
    for label, key, value in (("stride-0", "flow_stride", 0), ("stride-24", "flow_stride", 24),
                              ("stride-huge", "flow_stride", 99999999999), ("min-size-20000", "flow_min_size", 20000),
                              ("iterations-1e9", "flow_default_iterations", 10 ** 9)):
        variant = models.build(ARCH).eval()
        models.attach_metadata(variant, info)
        setattr(variant, key, value)
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(variant), buffer)
        variants.append((label, buffer.getvalue()))

    cases = []
    for index in range(args.weights):
        name, blob, what = weights_cases(state, rng)
        file = os.path.join(args.out, f"w{index:05d}-{name}.pth")
        with open(file, "wb") as f:
            f.write(blob)
        cases.append({"kind": "weights", "file": file, "mutation": name, "what": what})
    for index in range(args.models):
        name, blob, what = model_cases(base_export, variants, rng)
        file = os.path.join(args.out, f"m{index:05d}-{name}.pt")
        with open(file, "wb") as f:
            f.write(blob)
        cases.append({"kind": "model", "file": file, "mutation": name, "what": what})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(json.dumps({"cases": len(cases), "out": args.out}))


if __name__ == "__main__":
    main()

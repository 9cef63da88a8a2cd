#!/usr/bin/python3
"""An independent safetensors writer and checker for test_safetensors.

Written from the format specification (8-byte little-endian header length N,
N bytes of JSON, then the byte buffer; data_offsets relative to the buffer;
the tensors tile the buffer), without the `safetensors` package, which is not
in Debian. Uses Debian's python3-torch only for the dtype conversions, so the
C reader's F16/BF16 -> F32 widening is checked against torch's.

  gen_safetensors.py write OUT.safetensors OUT.ref
      Writes a file with F32, F16, BF16, I64, empty and scalar tensors, names
      that need JSON escapes, and __metadata__; OUT.ref holds torch's f32
      values of every F32/F16/BF16 tensor.
  gen_safetensors.py check IN.safetensors IN.ref
      Parses IN per the spec, converts its F32/F16/BF16 tensors with torch and
      compares them bitwise with IN.ref (written by the C test). Exit 0 = ok.

The .ref format: repeated records of u32 name length, UTF-8 name, u64 count,
count little-endian f32 values.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "I64": (torch.int64, 8), "U8": (torch.uint8, 1)}


def tensor_bytes(t):
    """The tensor's elements as little-endian bytes."""
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.int64:
        return t.numpy().astype("<i8").tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    buf = bytearray()
    for name, (dtype, t) in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [len(buf), len(buf) + len(data)]}
        buf += data
    # ensure_ascii (the default) turns non-ASCII names into \u escapes,
    # including surrogate pairs, which the C parser must decode.
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the spec allows padding with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(buf)


def write_ref(path, values):
    with open(path, "wb") as f:
        for name, t in values.items():
            nb = name.encode("utf-8")
            arr = t.contiguous().float().numpy().astype("<f4")
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<Q", arr.size))
            f.write(arr.tobytes())


def read_ref(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + n].decode("utf-8")
        pos += 4 + n
        (count,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        out[name] = data[pos:pos + 4 * count]
        pos += 4 * count
    return out


def cmd_write(out, ref):
    g = torch.Generator().manual_seed(1234)
    half_specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.103515625e-05,
                                  5.960464477539063e-08, 3.0517578125e-05, float("inf"),
                                  float("-inf"), float("nan"), 0.1, 1e-4, 333.25],
                                 dtype=torch.float32)
    tensors = {
        "vision.proj.weight": ("F32", torch.randn(3, 5, generator=g)),
        "half.values": ("F16", torch.cat([half_specials,
                                          torch.randn(49, generator=g) * 100]).half()),
        "bf.values": ("BF16", (torch.randn(2, 3, 4, generator=g) * 1e3).bfloat16()),
        "positions": ("I64", torch.arange(-2, 6, dtype=torch.int64)),
        "empty": ("F32", torch.zeros(0, 2)),
        "scalar": ("F32", torch.tensor(42.5)),
        "na\u00efve/\U0001F600 \"q\"\\": ("BF16", torch.tensor([1.5, -3.0]).bfloat16()),
    }
    write_safetensors(out, tensors, {"format": "pt", "note": "tab\there \u00e9"})
    write_ref(ref, {k: t for k, (d, t) in tensors.items() if d in ("F32", "F16", "BF16")})


def cmd_check(path, ref):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    assert 2 <= n <= len(data) - 8, "bad header length"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = data[8 + n:]
    header.pop("__metadata__", None)
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    at = 0
    for b, e, k in spans:
        assert b == at, "hole or overlap at %s" % k
        at = e
    assert at == len(buf), "buffer not covered"
    expected = read_ref(ref)
    seen = 0
    for name, info in header.items():
        dtype, size = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        assert e - b == count * size, "size mismatch for %s" % name
        if info["dtype"] not in ("F32", "F16", "BF16"):
            continue
        raw = bytes(buf[b:e])
        t = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        got = t.float().numpy().astype("<f4").tobytes()
        assert name in expected, "unexpected tensor %r" % name
        assert got == expected[name], "values differ for %r" % name
        seen += 1
    assert seen == len(expected), "missing tensors"
    print("ok: %d tensors match" % seen)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    (cmd_write if sys.argv[1] == "write" else cmd_check)(sys.argv[2], sys.argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An independent safetensors implementation (stdlib only), the reference the
C++ reader and writer are checked against.

  safetensors_ref.py check FILE   verifies the file steper's test wrote
  safetensors_ref.py write FILE   writes the file steper's test then reads
"""
import json
import struct
import sys


def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        fmt = {"F32": "f", "F16": "e", "I64": "q"}[e["dtype"]]
        count = (end - b) // struct.calcsize(fmt)
        out[name] = (e["dtype"], e["shape"], list(struct.unpack("<%d%s" % (count, fmt), data[b:end])))
    return header.get("__metadata__", {}), out, n


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "check":
        meta, t, n = read(path)
        assert n % 8 == 0, "header not padded to 8 bytes"
        assert meta == {"format": "pt"}, meta
        assert t["model.embed_tokens.weight"] == ("F32", [2, 3], [0.5, -1.0, 2.0, 3.25, 0.0, -0.125]), t
        assert t["model.norm.weight"] == ("F16", [3], [1.0, 0.5, -2.0]), t
        assert t["step"] == ("I64", [], [42]), t
        print("python reads steper's file")
    else:
        tensors = [("a.weight", "F32", [2, 2], [1.0, 2.0, 3.0, 4.0]), ("b.bias", "F16", [3], [0.25, -0.5, 8.0])]
        header, blobs, off = {"__metadata__": {"source": "python"}}, [], 0
        for name, dtype, shape, values in tensors:
            blob = struct.pack("<%d%s" % (len(values), {"F32": "f", "F16": "e"}[dtype]), *values)
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
            off += len(blob)
            blobs.append(blob)
        text = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    main()

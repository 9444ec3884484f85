#!/usr/bin/env python3
"""gguf_fixtures.py — reference data for the GGUF reader's tests (crates/rl-model/tests/gguf.rs),
produced with gguf-py, llama.cpp's own Python GGUF library.

    python scripts/gguf_fixtures.py synthetic [OUT_DIR]
        Writes all-types.gguf (one tensor per supported ggml type, one unsupported Q5_0 tensor,
        metadata of every GGUF value type including nested arrays), aligned-64.gguf (the same
        F32 and Q8_0 tensors with general.alignment = 64), expected/<tensor>.f32 (gguf-py's
        dequantisation, raw little-endian f32) and expected.json (type and row-major shape per
        tensor). Random data from a fixed seed, so reruns give identical files.

    python scripts/gguf_fixtures.py real MODEL.gguf [OUT_JSON]
        Writes reference stats of every tensor of a real model, dequantised by gguf-py:
        type, shape, f64 sum, and an exact position-sensitive checksum of the f32 bits
        (sum over i of bits[i] * (i + 1), mod 2**64); first 16 values for a few tensors.

Needs `pip install gguf numpy` in a scratch venv (not the project's venv), e.g.
    python3 -m venv /tmp/ggufpy && /tmp/ggufpy/bin/pip install gguf numpy
Default OUT_DIR is crates/rl-gguf/tests/fixtures.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "crates/rl-gguf/tests/fixtures"
QK_K = 256


def k_quant_blocks(rng, qtype, n_blocks):
    """Random but valid K-quant super-blocks (gguf-py cannot quantise K-quants): random
    quant bits and scales, finite f16 super-block scales."""
    d = rng.uniform(0.001, 0.01, size=(n_blocks, 1)).astype(np.float16).view(np.uint8)
    dmin = rng.uniform(0.0, 0.01, size=(n_blocks, 1)).astype(np.float16).view(np.uint8)

    def rand(n):
        return rng.integers(0, 256, size=(n_blocks, n), dtype=np.uint8)

    if qtype == T.Q4_K:
        parts = [d, dmin, rand(12), rand(QK_K // 2)]
    elif qtype == T.Q5_K:
        parts = [d, dmin, rand(12), rand(QK_K // 8), rand(QK_K // 2)]
    elif qtype == T.Q6_K:
        parts = [rand(QK_K // 2), rand(QK_K // 4), rand(QK_K // 16), d]
    else:
        raise ValueError(qtype)
    blocks = np.concatenate(parts, axis=1)
    assert blocks.shape[1] == gguf.GGML_QUANT_SIZES[qtype][1]
    return blocks


def synthetic_tensors():
    """(name, ggml type, stored array) per tensor; the stored array is what GGUFWriter writes."""
    rng = np.random.default_rng(20261125)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 6e-8, -1e-5], np.float32)
    out = []

    f32 = rng.standard_normal((2, 3, 16)).astype(np.float32)  # 3-D: checks dim reversal
    f32.flat[: len(specials)] = specials
    out.append(("f32", T.F32, f32))

    f16 = rng.standard_normal((2, 2, 2, 32)).astype(np.float32)  # 4-D
    f16.flat[: len(specials)] = specials
    out.append(("f16", T.F16, gguf.quants.quantize(f16, T.F16)))

    bf16 = rng.standard_normal((4, 32)).astype(np.float32)
    bf16.flat[: len(specials)] = specials
    out.append(("bf16", T.BF16, gguf.quants.quantize(bf16, T.BF16)))

    for name, qtype in [("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1)]:
        x = rng.standard_normal((6, 64)).astype(np.float32)
        x[0] = 0.0  # an all-zero row: d = 0
        out.append((name, qtype, gguf.quants.quantize(x, qtype)))

    for name, qtype in [("q4_k", T.Q4_K), ("q5_k", T.Q5_K), ("q6_k", T.Q6_K)]:
        blocks = k_quant_blocks(rng, qtype, 4)
        out.append((name, qtype, blocks.reshape(2, -1)))  # 2 rows of 512 elements

    x = rng.standard_normal((1, 32)).astype(np.float32)
    out.append(("unsupported.q5_0", T.Q5_0, gguf.quants.quantize(x, T.Q5_0)))
    return out


def add_metadata(w):
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_float32("test.f32", 3.25)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ✓")
    w.add_uint64("test.u64", 2**40 + 1)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 1 / 3)
    w.add_key_value("test.array.u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.array.i32", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.array.u64", [2**63], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.array.f32", [0.5, -1.5], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("test.array.f64", [0.25], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("test.array.bool", [True, False], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("test.array.string", ["a", "", "ünï"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("test.array.nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("test.array.nested_str", [["x"], ["y", "z"]], V.ARRAY, sub_type=V.ARRAY)


def write_gguf(path, tensors, alignment=None, metadata=True):
    w = gguf.GGUFWriter(str(path), arch="test")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    if metadata:
        add_metadata(w)
    for name, qtype, arr in tensors:
        if qtype in (T.F32, T.F16):
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def json_lines(d):
    """A JSON object with one line per key, for readable diffs."""
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}\n"


def synthetic(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "expected").mkdir(exist_ok=True)
    tensors = synthetic_tensors()
    write_gguf(out / "all-types.gguf", tensors)
    write_gguf(out / "aligned-64.gguf", [t for t in tensors if t[0] in ("f32", "q8_0")],
               alignment=64, metadata=False)

    # Dequantise what was written, read back through gguf-py's reader.
    expected = {}
    for t in gguf.GGUFReader(str(out / "all-types.gguf")).tensors:
        if t.tensor_type == T.Q5_0:
            continue
        y = gguf.quants.dequantize(t.data, t.tensor_type).astype("<f4")
        y.tofile(out / "expected" / f"{t.name}.f32")
        expected[t.name] = {"type": t.tensor_type.name, "shape": list(y.shape)}
    (out / "expected.json").write_text(json_lines(expected))
    print(f"wrote {out}", file=sys.stderr)


FIRST16 = {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight",
           "blk.29.ffn_down.weight", "output_norm.weight"}


def checksum(y):
    bits = y.reshape(-1).view(np.uint32)
    total = np.uint64(0)
    step = 1 << 20
    with np.errstate(over="ignore"):
        for i in range(0, len(bits), step):
            chunk = bits[i:i + step].astype(np.uint64)
            idx = np.arange(i + 1, i + 1 + len(chunk), dtype=np.uint64)
            total += (chunk * idx).sum(dtype=np.uint64)
    return int(total)


def real(model, out_json):
    sha = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    stats = {}
    for t in gguf.GGUFReader(model).tensors:
        y = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        s = {"type": t.tensor_type.name, "shape": list(y.shape),
             "sum": float(y.sum(dtype=np.float64)), "checksum": str(checksum(y))}
        if t.name in FIRST16:
            s["first16"] = [float(v) for v in y.reshape(-1)[:16]]
        stats[t.name] = s
    doc = {"file": Path(model).name, "sha256": sha, "tensors": stats}
    Path(out_json).write_text(
        "{\n" + f' "file": {json.dumps(doc["file"])},\n "sha256": {json.dumps(sha)},\n'
        + ' "tensors": ' + json_lines(stats).replace("\n", "\n ").rstrip() + "\n}\n")
    print(f"wrote {out_json} ({len(stats)} tensors)", file=sys.stderr)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["synthetic"] and len(args) <= 2:
        synthetic(Path(args[1]) if len(args) == 2 else DEFAULT_OUT)
    elif args[:1] == ["real"] and len(args) in (2, 3):
        real(args[1], args[2] if len(args) == 3 else DEFAULT_OUT / "smollm2-135m-q4_1.stats.json")
    else:
        sys.exit(__doc__)

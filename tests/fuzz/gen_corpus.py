#!/usr/bin/env python3
"""gen_corpus.py - writes the hand-made seed files of tests/fuzz/corpus/.

Run from anywhere: python3 tests/fuzz/gen_corpus.py.  It (re)writes the files named
seed-* only; inputs that fuzzing found (min-*, crash-*, regress-*) are kept by hand
next to them and never touched here.  The input formats are those described at the top
of each fuzz_<target>.c.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def opdef(name, inputs=(), outputs=(), attrs=(), options=0, nth=0, counts=None):
    """One fuzz_opdef input: the header, then name, inputs, outputs, attrs."""
    ni, no, na = counts if counts is not None else (len(inputs), len(outputs), len(attrs))
    assert ni <= 7 and no <= 3 and na <= 7
    head = bytes([ni | (no << 3) | (na << 5), options, nth])
    fields = [name, *inputs, *outputs, *attrs]
    return head + "\n".join(fields).encode()


# struct_size variants (bits 0-1), flags (bits 2-3), other option bits
SIZE_MIN, SIZE_SHORT, SIZE_NEWER = 1, 2, 3
FLAGS_STATEFUL, FLAGS_BOTH, FLAGS_UNKNOWN = 1 << 2, 2 << 2, 3 << 2
NAME_NULL, INJECT, PERSISTENT, EMPTY_LISTS = 0x10, 0x20, 0x40, 0x80

OPDEF = {
    "matmul": opdef("MatMul", ["a: T", "b: T"], ["product: T"],
                    ["T: {f32, f64, i32}", "transpose_a: bool = false",
                     "transpose_b: bool = false"]),
    "addn": opdef("AddN", ["inputs: N * T"], ["sum: T"], ["N: int >= 1", "T: numbertype"]),
    "concat": opdef("ConcatV2", ["values: N * T", "axis: Tidx"], ["output: T"],
                    ["N: int >= 2", "T: alltypes", "Tidx: {i32, i64} = i32"]),
    "identityn": opdef("IdentityN", ["input: T"], ["output: T"], ["T: list(type) >= 1"]),
    "fixed": opdef("Shape", ["input: T"], ["output: out_type"],
                   ["T: type", "out_type: {int32, int64} = int32"]),
    "resource": opdef("ReadVariableOp", ["resource: resource"], ["value: dtype"],
                      ["dtype: type"], options=FLAGS_STATEFUL),
    "defaults-int": opdef("Op", attrs=["axis: int = -3", "n: int >= 2 = 2",
                                       "big: int = 9223372036854775807"]),
    "defaults-float": opdef("Op", attrs=["alpha: float = -1.5", "eps: float = 1e-3",
                                         "big: float = -inf", "q: float = nan",
                                         "h: float = +2.5E+10"]),
    "defaults-string": opdef("Op", attrs=["s: string = \"a\\\"b\\\\c\\n\"",
                                          "c: string = 'single'",
                                          "pad: string = \"SAME\""]),
    "defaults-shape": opdef("Op", attrs=["s: shape = [2, -1]", "u: shape = ?",
                                         "scalar: shape = []"]),
    "defaults-lists": opdef("Op", attrs=["strides: list(int) = [1, 2, -3]",
                                         "flags: list(bool) = [true, false]",
                                         "types: list(type) = [f32, i64]",
                                         "shapes: list(shape) = [[1], [2, 3]]",
                                         "names: list(string) = [\"a,b\", 'c']",
                                         "fs: list(float) = [1.5, -2e3, inf]",
                                         "e: list(int) = []"]),
    "list-min": opdef("Op", attrs=["l: list(int) >= 2 = [1, 2]",
                                   "Tout: list({f32, i32}) >= 1",
                                   "Ts: list(floattype)", "t: tensor",
                                   "tl: list(tensor) = []"]),
    "typelist": opdef("Call", ["args: Tin"], ["out: Tout"],
                      ["Tin: list(type)", "Tout: list({f32, i32}) >= 1"]),
    "sets": opdef("Op", attrs=["A: realnumbertype", "B: floattype = f32",
                               "C: {inttype, bool}", "D: {f32, i32} = int32",
                               "E: type = DT_FLOAT"]),
    "no-specs": opdef("NoOp", options=FLAGS_BOTH),
    "empty-lists": opdef("NoOp", options=EMPTY_LISTS),
    "underscore-name": opdef("_Recv", [], ["tensor: tensor_type"],
                             ["tensor_type: type", "tensor_name: string"]),
    "whitespace": opdef("Op", ["\tx :\r T "], ["y:T"], ["  T :  {  f32 ,f64 }  =  f64  "]),
    # malformed
    "bad-name-lower": opdef("matMul"),
    "bad-name-long": opdef("A" * 200),
    "bad-name-null": opdef("Op", options=NAME_NULL),
    "bad-flags": opdef("Op", options=FLAGS_UNKNOWN),
    "bad-size-short": opdef("Op", options=SIZE_SHORT),
    "size-min": opdef("Op", ["x: T"], [], ["T: type"], options=SIZE_MIN),
    "size-newer": opdef("Op", ["x: T"], ["y: T"], ["T: type"], options=SIZE_NEWER),
    "bad-dup-attr": opdef("Op", attrs=["T: type", "T: type"]),
    "bad-dup-input": opdef("Op", ["x: f32", "x: f32"]),
    "bad-length-type": opdef("Op", ["x: N * T"], [], ["N: type", "T: type"]),
    "bad-length-negmin": opdef("Op", ["x: N * T"], [], ["N: int >= -1", "T: type"]),
    "bad-typelist-number": opdef("Op", ["x: N * Tl"], [], ["N: int", "Tl: list(type)"]),
    "bad-unknown-type": opdef("Op", ["x: widget"]),
    "bad-attr-kinds": opdef("Op", attrs=["k: widget"]),
    "bad-default-set": opdef("Op", attrs=["T: {f32, f64} = i32"]),
    "bad-default-min": opdef("Op", attrs=["n: int >= 2 = 1"]),
    "bad-list-min": opdef("Op", attrs=["l: list(int) >= 2 = [1]"]),
    "bad-list-unclosed": opdef("Op", attrs=["l: list(int) = [1, 2"]),
    "bad-string-unterminated": opdef("Op", attrs=["s: string = \"abc"]),
    "bad-string-escape": opdef("Op", attrs=["s: string = \"a\\qb\""]),
    "bad-string-trailing-bs": opdef("Op", attrs=["l: list(string) = [\"a\\"]),
    "bad-int-range": opdef("Op", attrs=["n: int = 99999999999999999999"]),
    "bad-int-float": opdef("Op", attrs=["n: int = 1.5"]),
    "bad-shape-rank": opdef("Op", attrs=["s: shape = [1,2,3,4,5,6,7,8,9]"]),
    "bad-shape-extent": opdef("Op", attrs=["s: shape = [1, -2]"]),
    "bad-tensor-default": opdef("Op", attrs=["t: tensor = 1"]),
    "bad-min-on-float": opdef("Op", attrs=["f: float >= 1"]),
    "bad-exponent": opdef("Op", attrs=["f: float = 1e+"]),
    "bad-trailing": opdef("Op", attrs=["n: int = 3 junk"]),
    "bad-nested-list": opdef("Op", attrs=["l: list(list(int))"]),
    "bad-ident-long": opdef("Op", attrs=["x" * 140 + ": int"]),
    # allocation failure injection
    "oom-1": opdef("AddN", ["inputs: N * T"], ["sum: T"], ["N: int >= 1", "T: numbertype"],
                   options=INJECT, nth=0),
    "oom-5": opdef("Op", attrs=["names: list(string) = [\"a\", \"b\"]", "s: string = 'x'"],
                   options=INJECT, nth=4),
    "oom-persistent": opdef("Call", ["args: Tin"], ["out: Tout"],
                            ["Tin: list(type)", "Tout: list({f32, i32}) >= 1"],
                            options=INJECT | PERSISTENT, nth=2),
}

DEVSPEC = {
    "empty": "",
    "full": "/job:localhost/replica:0/task:0/device:CPU:0",
    "job-task": "/job:worker/task:3",
    "device-gpu": "/device:GPU:1",
    "device-noindex": "/device:GPU",
    "device-star": "/device:GPU:*",
    "short-cpu": "/cpu:0",
    "short-gpu": "/gpu:2",
    "bare-index": "GPU:1",
    "bare": "CPU",
    "lower": "cpu",
    "underscore-type": "device:TestDev_2:12",
    "replica-device": "/replica:1/device:CPU:0",
    "job-chars": "/job:ps-0.a_b",
    "mixed-case-keys": "/JOB:w/Replica:2/TASK:9/Device:tpu:999999999",
    "bad-slash": "/",
    "bad-double-slash": "//cpu:0",
    "bad-trailing-slash": "/cpu:0/",
    "bad-device-empty": "/device:",
    "bad-index-empty": "/device:CPU:",
    "bad-index-alpha": "/device:CPU:x",
    "bad-index-negative": "/device:CPU:-1",
    "bad-index-twice": "/device:CPU:0:1",
    "bad-index-long": "/device:CPU:1234567890",
    "bad-type-twice": "/cpu:0/gpu:0",
    "bad-job-twice": "/job:a/job:b",
    "bad-job-empty": "/job:",
    "bad-job-long": "/job:" + "j" * 40,
    "bad-job-chars": "/job:a b",
    "bad-replica": "/replica:x",
    "bad-replica-twice": "/replica:1/replica:2",
    "bad-task-empty": "/task:",
    "bad-type-digit": "/device:0PU:1",
    "bad-type-long": "/device:" + "G" * 40,
    "bad-type-chars": "/device:G-PU",
}

DTYPE = {
    "f32": "f32", "float": "float", "dt-float": "DT_FLOAT", "float32": "float32",
    "upper": "INT64", "half": "half", "bf16": "bfloat16", "c64": "c64",
    "complex64": "complex64", "resource": "resource", "string": "string", "bool": "bool",
    "u64": "uint64", "i8": "int8",
    "set": "{f32, f64}", "set-names": "{inttype, bool}", "set-space": "  { f16 ,bf16 }  ",
    "realnumbertype": "realnumbertype", "numbertype": "numbertype",
    "floattype": "floattype", "inttype": "inttype", "alltypes": "alltypes",
    "bad-empty": "", "bad-dt": "DT_", "bad-unknown": "widget", "bad-braces": "{}",
    "bad-unclosed": "{f32, f64", "bad-trailing-comma": "{f32,}", "bad-junk": "f32 junk",
    "bad-nested": "{{f32}}", "bad-long": "f" * 200, "bad-ws": "\t\n",
    "bad-dt-dt": "DT_DT_FLOAT", "bad-invalid-name": "invalid",
}


def write(target, seeds, encode):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for name, value in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(encode(value))


def main():
    write("fuzz_opdef", OPDEF, lambda v: v)
    write("fuzz_devspec", DEVSPEC, lambda v: v.encode())
    write("fuzz_dtype", DTYPE, lambda v: v.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/fuzz_graphdef (the frozen mlp.pb seed
is a copy of tests/fixtures/tf/mlp.pb).  Needs TensorFlow's protos (graph_pb2).

Seeds: list inputs, ":N" and "^control" inputs, devices, unsorted nodes, constants of
several dtypes in tensor_content and in typed fields (with the repeated last value),
string tensors, shapes of unknown rank, a cycle, a duplicate name, nested func attrs.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from tensorflow.core.framework import graph_pb2, attr_value_pb2, types_pb2  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_graphdef")


def node(gd, name, op, inputs=(), device="", **attrs):
    n = gd.node.add(name=name, op=op, device=device)
    n.input.extend(inputs)
    for k, v in attrs.items():
        n.attr[k].CopyFrom(v)
    return n


def t(dt):
    return attr_value_pb2.AttrValue(type=dt)


def const(gd, name, value, dtype=None):
    tp = tensor_util.make_tensor_proto(value, dtype=dtype)
    node(gd, name, "Const", value=attr_value_pb2.AttrValue(tensor=tp), dtype=t(tp.dtype))


def write(name, gd):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(gd.SerializeToString())


def main():
    os.makedirs(OUT, exist_ok=True)
    F = types_pb2.DT_FLOAT
    gd = graph_pb2.GraphDef()
    node(gd, "y", "ConcatV2", ["a", "bn:1", "axis", "^init"], N=attr_value_pb2.AttrValue(i=2),
         T=t(F), Tidx=t(types_pb2.DT_INT32))
    node(gd, "init", "NoOp", device="/device:CPU:0")
    const(gd, "a", np.arange(2, dtype=np.float32))
    const(gd, "axis", np.int32(0))
    const(gd, "x4", np.ones((1, 1, 2, 2), np.float32))
    const(gd, "c2", np.ones((2,), np.float32))
    node(gd, "bn", "FusedBatchNormV3", ["x4", "c2", "c2", "c2", "c2"], T=t(F), U=t(F),
         epsilon=attr_value_pb2.AttrValue(f=1e-3), is_training=attr_value_pb2.AttrValue(b=False),
         data_format=attr_value_pb2.AttrValue(s=b"NHWC"))
    write("concat_bn_control.pb", gd)

    gd = graph_pb2.GraphDef()
    shp = attr_value_pb2.AttrValue()
    shp.shape.unknown_rank = True
    node(gd, "p", "Placeholder", dtype=t(F), shape=shp)
    const(gd, "s", np.array([b"ab", b""], dtype=object), dtype=types_pb2.DT_STRING)
    rep = tensor_util.make_tensor_proto(3.0, dtype=F, shape=[2, 3])  # one value, repeated
    node(gd, "r", "Const", value=attr_value_pb2.AttrValue(tensor=rep), dtype=t(F))
    const(gd, "i64", np.array([-1, 2**40], np.int64))
    const(gd, "b", np.array([True, False]))
    const(gd, "h", np.array([1.5], np.float16))
    node(gd, "m", "MatMul", ["p", "r"], T=t(F), transpose_a=attr_value_pb2.AttrValue(b=False),
         grad_a=attr_value_pb2.AttrValue(b=False))
    write("typed_consts.pb", gd)

    gd = graph_pb2.GraphDef()
    node(gd, "a", "Identity", ["b"], T=t(F))
    node(gd, "b", "Identity", ["a"], T=t(F))
    write("cycle.pb", gd)

    gd = graph_pb2.GraphDef()
    node(gd, "p", "Placeholder", dtype=t(F))
    node(gd, "p", "Placeholder", dtype=t(F))
    write("duplicate.pb", gd)

    gd = graph_pb2.GraphDef()
    n = node(gd, "p", "Placeholder", dtype=t(F))
    v = n.attr["nest"]
    for _ in range(6):
        v.func.name = "f"
        v = v.func.attr["k"]
    v.i = 1
    write("nested_func.pb", gd)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Loads a GraphDef Floe exported (tests/io/test_graphdef.c's sample graph) with
TensorFlow's tf.compat.v1.import_graph_def and runs it, checking the values against
NumPy.  Exits 77 when TensorFlow is absent."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    import numpy as np
    import tensorflow as tf
except Exception as e:  # noqa: BLE001
    print("SKIP: TensorFlow is not importable: %s" % e)
    sys.exit(77)

with open(sys.argv[1], "rb") as f:
    gd = tf.compat.v1.GraphDef.FromString(f.read())
g = tf.Graph()
with g.as_default():
    tf.compat.v1.import_graph_def(gd, name="")
ops = {op.name: op for op in g.get_operations()}
assert len(ops) == len(gd.node), (len(ops), len(gd.node))
assert ops["dense/Relu6"].device.endswith("device:CPU:0"), ops["dense/Relu6"].device
assert [c.name for c in ops["init"].control_inputs] == ["bn"]
assert list(ops["var"].get_attr("allowed_devices")) == [b"/device:CPU:0", b"x\0y"]
x = np.array([[1, 2, 3], [-4, 5, 0.5]], np.float32)
w = np.array([[1.5, -2, 0.25], [3, 1e-7, -0.0]], np.float32)
ba = x @ w.T + np.array([0.5, -0.5], np.float32)
want = np.concatenate([np.clip(ba, 0, 6), ba], axis=1)
with tf.compat.v1.Session(graph=g) as s:
    got, strings, i64, var = s.run(["concat:0", "strings:0", "i64:0", "bn_var_out:0"],
                                   {"input/x:0": x})
np.testing.assert_allclose(got, want, rtol=1e-6)
assert list(strings) == [b"hello", b"a\0b"], strings
assert list(i64) == [-(2**63), -1, 2**63 - 1], i64
assert var.shape == (2,)
print("tf.compat.v1.import_graph_def accepted %d nodes; values match" % len(ops))

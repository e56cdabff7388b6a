#!/usr/bin/env python3
"""Parses the Examples test_example.c wrote with floe_example_builder (FILE, a TFRecord
file of 20 Examples) with TensorFlow's tf.io.parse_single_example and checks every value
against the test's pattern.  Exit 0 when TensorFlow reads them all as written."""
import sys

import numpy as np
import tensorflow as tf

SPEC = {
    "f": tf.io.FixedLenFeature([3], tf.float32),
    "i": tf.io.FixedLenFeature([3], tf.int64),
    "s": tf.io.FixedLenFeature([2], tf.string),
    "empty": tf.io.VarLenFeature(tf.float32),
}


def main():
    n = 0
    for i, rec in enumerate(tf.data.TFRecordDataset(sys.argv[1])):
        p = tf.io.parse_single_example(rec, SPEC)
        want_f = np.array([i, -i * 0.5, 1e-3], np.float32)
        want_i = [i, -i, 2**40 + i]
        want_s = [b"s%d" % i, b""]
        if not (np.array_equal(p["f"].numpy(), want_f) and p["i"].numpy().tolist() == want_i
                and p["s"].numpy().tolist() == want_s and p["empty"].values.shape[0] == 0):
            print("record %d: TensorFlow parsed %r" % (i, p))
            return 1
        n += 1
    if n != 20:
        print("TensorFlow read %d Examples, not 20" % n)
        return 1
    print("TensorFlow %s parsed the 20 Examples" % tf.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())

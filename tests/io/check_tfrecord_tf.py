#!/usr/bin/env python3
"""Reads the TFRecord files test_tfrecord.c wrote (tf_none/tf_zlib/tf_gzip.tfrecord in
DIR) with TensorFlow's own reader and checks every record against the test's pattern.
Usage: check_tfrecord_tf.py DIR LEN,LEN,...   Exit 0 when TensorFlow reads them all."""
import os
import sys

import tensorflow as tf

M = (1 << 64) - 1


def record(i, n):
    s = (0x9e3779b97f4a7c15 * (i + 1)) & M
    out = bytearray(n)
    for k in range(n):
        s ^= (s << 13) & M
        s ^= s >> 7
        s ^= (s << 17) & M
        out[k] = s & 0xff
    return bytes(out)


def main():
    d, lens = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
    want = [record(i, n) for i, n in enumerate(lens)]
    for name, comp in (("tf_none.tfrecord", ""), ("tf_zlib.tfrecord", "ZLIB"),
                       ("tf_gzip.tfrecord", "GZIP")):
        got = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(d, name),
                                                          compression_type=comp)]
        if got != want:
            print("%s: TensorFlow read %d records, not the %d written" % (name, len(got), len(want)))
            return 1
    print("TensorFlow %s read all three files" % tf.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""TensorFlow's side of benchmarks/bench_tfrecord.sh: the same measurements as
bench_tfrecord.c on the same files, with tf.data.

Usage: peer_tfrecord.py PLAIN GZIP N [REPS]
Prints "tf <name> <value> <unit>" lines; exits 3 when TensorFlow is not installed.
  read_plain / read_gzip: tf.data.TFRecordDataset, batched by 1024 and drained with
    Dataset.reduce (graph mode: no Python per element, and reduce's per-call cost
    spread over 1024 records, so TF's reader is what is measured);
  pipeline: TFRecordDataset -> batch(256) -> map(parse_example + decode_raw + cast / 255,
    num_parallel_calls=4) -> prefetch(2), drained with reduce;
  pipeline_shuffle: the same with shuffle(10000) before batch;
  pipeline_seq: pipeline with the map run sequentially (num_parallel_calls=None).
"""
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    import tensorflow as tf
except ImportError:
    print("peer_tfrecord: tensorflow not installed", file=sys.stderr)
    sys.exit(3)


def timed(ds, reps):
    times, n = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        n = int(ds.reduce(tf.constant(0, tf.int64), _count))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n


def _count(c, x):
    if isinstance(x, tuple):
        x = x[0]
    return c + (tf.cast(tf.shape(x)[0], tf.int64) if x.shape.rank else tf.constant(1, tf.int64))


def parse(batch):
    f = tf.io.parse_example(batch, {"image": tf.io.FixedLenFeature([], tf.string),
                                    "label": tf.io.FixedLenFeature([], tf.int64)})
    x = tf.cast(tf.io.decode_raw(f["image"], tf.uint8), tf.float32) * (1.0 / 255.0)
    return x, f["label"]


def main():
    plain, gz, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    for name, path, comp in (("read_plain", plain, ""), ("read_gzip", gz, "GZIP")):
        t, cnt = timed(tf.data.TFRecordDataset(path, compression_type=comp).batch(1024), reps)
        assert cnt == n, (cnt, n)
        print("tf %s %.1f MB/s (%.0f records/s)" % (name, os.path.getsize(path) / t / 1e6, n / t))
    for name, shuffle, par in (("pipeline", False, 4), ("pipeline_shuffle", True, 4),
                               ("pipeline_seq", False, None)):
        ds = tf.data.TFRecordDataset(plain)
        if shuffle:
            ds = ds.shuffle(10000, seed=1)
        ds = ds.batch(256).map(parse, num_parallel_calls=par).prefetch(2)
        t, cnt = timed(ds, reps)
        assert cnt == n, (cnt, n)
        print("tf %s %.0f examples/s" % (name, n / t))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""tb_check.py - loads Floe's event files with TensorBoard's own readers.

Usage: tb_check.py TB_SAMPLE   (the tests/io/tb_sample executable)

Runs TB_SAMPLE into a temporary directory, then checks what it wrote with
  - tensorboard.backend.event_processing.event_file_loader (raw events, first record),
  - event_accumulator.EventAccumulator (scalars, histograms, compressed histograms,
    images decoded with PIL, the graph),
  - plugin_event_multiplexer.EventMultiplexer, as `tensorboard --logdir` loads runs
    (the scalars, histograms and images plugins' tensor forms via data_compat),
against the values tb_sample documents and the per-epoch values fit printed.
Exits 77 (meson: skipped) with the reason when the tensorboard package is absent.
"""
import bisect
import io
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import types

# TensorBoard uses TensorFlow's file I/O when TensorFlow is installed and its own stub
# otherwise (as in CI); "notf" asks for the stub, and spares importing TensorFlow.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

try:
    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.util import tensor_util
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: TensorBoard's reader is not available ({e}); "
          "pip install tensorboard (scripts/setup.sh does)")
    sys.exit(77)

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def tf_limits():
    """TensorFlow's default histogram bucket limits (histogram.cc)."""
    pos = []
    v = 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    pos.append(sys.float_info.max)
    return [-x for x in reversed(pos)] + [0.0] + pos


def tf_histogram(values):
    """(limits, counts) as Histogram::EncodeToProto(preserve_zero_buckets=false)."""
    limits = tf_limits()
    counts = [0.0] * len(limits)
    for x in values:
        counts[min(bisect.bisect_right(limits, x), len(limits) - 1)] += 1
    out_l, out_c = [], []
    i = 0
    while i < len(limits):
        end, count = limits[i], counts[i]
        i += 1
        if count <= 0:
            while i < len(limits) and counts[i] <= 0:
                end, count = limits[i], counts[i]
                i += 1
        out_l.append(end)
        out_c.append(count)
    return out_l, out_c


def event_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("events.out.tfevents."))


def check_raw(d):
    files = event_files(d)
    check(len(files) == 1, f"{d}: one event file, got {files}")
    name = files[0]
    check(re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+", name) is not None,
          f"file name {name} follows events.out.tfevents.<secs>.<host>.<pid>.<n>")
    # The legacy loader yields the records as written (EventFileLoader adds migrated ones).
    events = list(event_file_loader.LegacyEventFileLoader(os.path.join(d, name)).Load())
    check(events and events[0].file_version == "brain.Event:2",
          "first event is file_version brain.Event:2")
    return events


def check_sample(d, graph_expected):
    events = check_raw(d)
    check(len(events) == 1 + 20 + 2 + 3 + graph_expected, f"sample holds {len(events)} events")
    acc = ea.EventAccumulator(d, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0,
                                                ea.IMAGES: 0, ea.COMPRESSED_HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    check(sorted(tags["scalars"]) == ["accuracy", "loss"], f"scalar tags {tags['scalars']}")
    loss = acc.Scalars("loss")
    check([e.step for e in loss] == list(range(10)), "loss steps 0..9")
    check(all(e.value == f32(1.0 / (e.step + 1)) for e in loss), "loss values 1/(s+1)")
    check(all(e.value == f32(e.step / 10.0) for e in acc.Scalars("accuracy")),
          "accuracy values s/10")
    # Histograms: the statistics and exactly TensorFlow's buckets.
    hs = acc.Histograms("weights")
    check([h.step for h in hs] == [0, 1], "histogram steps")
    for h in hs:
        k = 2.0 if h.step == 1 else 1.0
        xs = [k * (i / 100.0 - 2.5) for i in range(500)]
        hv = h.histogram_value
        check(hv.num == 500 and hv.min == min(xs) and hv.max == max(xs),
              f"histogram {h.step} num/min/max {hv.num} {hv.min} {hv.max}")
        check(math.isclose(hv.sum, sum(xs), abs_tol=1e-9), f"histogram {h.step} sum")
        check(math.isclose(hv.sum_squares, sum(x * x for x in xs), rel_tol=1e-12),
              f"histogram {h.step} sum_squares")
        lim, cnt = tf_histogram(xs)
        check(list(hv.bucket_limit) == lim and list(hv.bucket) == cnt,
              f"histogram {h.step} buckets are TensorFlow's")
    # The distributions dashboard's compression: the median near the data's.
    ch = acc.CompressedHistograms("weights")
    med = [v for bp, v in ch[0].compressed_histogram_values if bp == 5000]
    check(med and abs(med[0] - float(np.median([i / 100.0 - 2.5 for i in range(500)]))) < 0.1,
          f"compressed median {med}")
    # Images: PNG decoded by PIL equals the pixels written.
    for tag, shape in (("rgb", (4, 5, 3)), ("grey", (3, 3, 1)), ("rgba", (2, 2, 4))):
        imgs = acc.Images(tag)
        check(len(imgs) == 1, f"image {tag}")
        im = imgs[0]
        check((im.height, im.width) == shape[:2], f"image {tag} size {im.height}x{im.width}")
        pix = np.asarray(Image.open(io.BytesIO(im.encoded_image_string)))
        want = (np.arange(np.prod(shape)) * 7 + 3) % 256
        check(pix.reshape(-1).tolist() == want.tolist(), f"image {tag} pixels")
        check(pix.reshape(shape).shape == shape, f"image {tag} channels")
    if graph_expected:
        g = acc.Graph()
        ops = {n.name: n.op for n in g.node}
        check(ops.get("x") == "Placeholder" and ops.get("w") == "Const" and
              ops.get("y") == "MatMul", f"graph nodes {ops}")
        y = [n for n in g.node if n.name == "y"][0]
        check(list(y.input) == ["x", "w"], f"MatMul inputs {list(y.input)}")
    else:
        print("note: GraphDef export is not built; graph not checked")


def check_fit(d, epochs):
    for run in ("train", "validation"):
        check_raw(os.path.join(d, run))
    # As `tensorboard --logdir d` loads it: one run per subdirectory, plugin tensors.
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(d)
    mux.Reload()
    runs = sorted(mux.Runs())
    check(runs == ["train", "validation"], f"runs {runs}")
    scal = mux.PluginRunToTagToContent("scalars")
    check(sorted(scal.get("train", {})) == ["epoch_accuracy", "epoch_learning_rate",
                                              "epoch_loss"],
          f"train scalars {scal.get('train')}")
    lr = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
          for e in mux.Tensors("train", "epoch_learning_rate")]
    check(lr == [(0, f32(1e-2)), (1, f32(1e-2))], f"train/epoch_learning_rate {lr}")
    check(sorted(scal.get("validation", {})) == ["epoch_accuracy", "epoch_loss"],
          f"validation scalars {scal.get('validation')}")
    hist = mux.PluginRunToTagToContent("histograms").get("train", {})
    check(sorted(hist) == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"],
          f"train histograms {sorted(hist)}")
    for run, keys in (("train", ("loss", "accuracy")), ("validation", ("val_loss",
                                                                        "val_accuracy"))):
        for tag, key in zip(("epoch_loss", "epoch_accuracy"), keys):
            ev = mux.Tensors(run, tag)
            got = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in ev]
            want = [(e - 1, f32(epochs[e][key])) for e in sorted(epochs)]
            check(got == want, f"{run}/{tag}: {got} != {want}")
    for tag in hist:
        ev = mux.Tensors("train", tag)
        check([e.step for e in ev] == [0, 1], f"histogram {tag} steps")
        arr = tensor_util.make_ndarray(ev[-1].tensor_proto)  # [k, 3]: left, right, count
        check(arr.ndim == 2 and arr.shape[1] == 3 and arr[:, 2].sum() > 0,
              f"histogram {tag} as the histograms plugin reads it")
    kernel = tensor_util.make_ndarray(mux.Tensors("train", "dense/kernel")[0].tensor_proto)
    check(int(round(kernel[:, 2].sum())) == 8 * 8, "dense/kernel histogram counts 64 weights")


def parse_sample_output(text):
    """tb_sample's stdout: ({epoch: {key: value}}, graph written 0/1)."""
    epochs, graph = {}, 0
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "epoch":
            epochs[int(f[1])] = {f[i]: float(f[i + 1]) for i in range(2, len(f), 2)}
        elif f and f[0] == "graph":
            graph = int(f[1])
    return epochs, graph


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="floe-tb-") as d:
        out = subprocess.run([sys.argv[1], d], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            return 1
        epochs, graph = parse_sample_output(out.stdout)
        check_sample(os.path.join(d, "sample"), graph)
        check_fit(os.path.join(d, "fit"), epochs)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("TensorBoard read every value Floe wrote")
    return 0


if __name__ == "__main__":
    sys.exit(main())

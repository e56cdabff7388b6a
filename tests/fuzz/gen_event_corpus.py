#!/usr/bin/env python3
"""gen_event_corpus.py - the seed corpus of fuzz_event (tests/fuzz/corpus/fuzz_event/).

Usage: gen_event_corpus.py TB_SAMPLE OUTDIR
  TB_SAMPLE  the tests/io/tb_sample executable (FLOE_PLUGIN_PATH set), whose event files
             (Floe's writer: scalars, histograms, PNG images, graph) become seeds;
  plus events written with TensorBoard's own protos and framing (tensorboard package):
  TensorFlow 2's tensor forms (scalars, histograms, images plugins), a session log,
  an empty event, a bad histogram, a broken PNG, a cut record and a bad CRC.
Run by hand when the format grows; the files are committed.
"""
import os
import struct
import subprocess
import sys
import tempfile

sys.modules.setdefault("tensorboard.compat.notf", type(sys)("tensorboard.compat.notf"))
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2  # noqa: E402
from tensorboard.compat.proto import tensor_shape_pb2, types_pb2  # noqa: E402
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c  # noqa: E402


def frame(data):
    n = struct.pack("<Q", len(data))
    return n + struct.pack("<I", masked_crc32c(n)) + data + struct.pack("<I", masked_crc32c(data))


def version():
    return event_pb2.Event(wall_time=1.5, file_version="brain.Event:2").SerializeToString()


def value_event(step, **kw):
    return event_pb2.Event(wall_time=2.0, step=step,
                           summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(**kw)]))


def meta(plugin):
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def tf2_events():
    shape = tensor_shape_pb2.TensorShapeProto
    scalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(),
                                    float_val=[0.25])
    dscalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=shape(),
                                     tensor_content=struct.pack("<d", 0.5))
    hist = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE,
        tensor_shape=shape(dim=[shape.Dim(size=2), shape.Dim(size=3)]),
        double_val=[0, 1, 3, 1, 2, 4])
    img = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                 tensor_shape=shape(dim=[shape.Dim(size=3)]),
                                 string_val=[b"2", b"2", b"\x89PNG\r\n\x1a\n"])
    return [
        value_event(1, tag="loss", metadata=meta("scalars"), tensor=scalar),
        value_event(2, tag="lossd", metadata=meta("scalars"), tensor=dscalar),
        value_event(3, tag="w", metadata=meta("histograms"), tensor=hist),
        value_event(4, tag="img", metadata=meta("images"), tensor=img),
    ]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    seeds = {}
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.argv[1], d], check=True, capture_output=True)
        for sub in ("sample", "fit/validation"):
            p = os.path.join(d, sub)
            f = sorted(os.listdir(p))[0]
            seeds["floe_" + sub.replace("/", "_")] = open(os.path.join(p, f), "rb").read()
    v = frame(version())
    seeds["tf2_forms"] = v + b"".join(frame(e.SerializeToString()) for e in tf2_events())
    seeds["session_log"] = v + frame(event_pb2.Event(
        step=7, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START,
                                                 msg="hi")).SerializeToString())
    seeds["empty_event"] = frame(b"")
    seeds["bad_histogram"] = v + frame(value_event(
        1, tag="h", histo=summary_pb2.HistogramProto(bucket_limit=[1.0, 2.0],
                                                      bucket=[3.0])).SerializeToString())
    seeds["broken_png"] = v + frame(value_event(1, tag="i", image=summary_pb2.Summary.Image(
        height=2, width=2, colorspace=3,
        encoded_image_string=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02"
        b"\x00\x00\x00\x02\x08\x02\x00\x00\x00")).SerializeToString())
    seeds["graph_only"] = frame(event_pb2.Event(graph_def=b"\n\x05\n\x01x\x12\x00")
                                .SerializeToString())
    cut = frame(value_event(5, tag="a", simple_value=1.0).SerializeToString())
    seeds["cut_record"] = v + cut[:-3]
    bad = bytearray(cut)
    bad[14] ^= 0x40
    seeds["bad_crc"] = v + bytes(bad)
    seeds["one_event"] = value_event(9, tag="x", simple_value=3.0).SerializeToString()
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

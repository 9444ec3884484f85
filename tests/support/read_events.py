"""Reads a TensorBoard log directory with TensorBoard's own EventAccumulator and prints, as JSON,
every scalar, histogram and text it finds: the reference our event writer is tested against."""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def main(logdir: str) -> None:
    acc = ea.EventAccumulator(
        logdir, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0}
    )
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "histograms": {
            t: [
                {
                    "step": e.step,
                    "num": e.histogram_value.num,
                    "min": e.histogram_value.min,
                    "max": e.histogram_value.max,
                    "sum": e.histogram_value.sum,
                    "bucket_total": sum(e.histogram_value.bucket),
                    "buckets": len(e.histogram_value.bucket),
                }
                for e in acc.Histograms(t)
            ]
            for t in tags["histograms"]
        },
        "texts": {
            t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)]
            for t in tags["tensors"]
            if acc.SummaryMetadata(t).plugin_data.plugin_name == "text"
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

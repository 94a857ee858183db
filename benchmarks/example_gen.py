"""The export step's per-photo path: read, check or convert, build and serialize the tf.Example.

    python -m benchmarks.example_gen --photos /work/shared/data/real-photos-sample/photos

For each photo, in one process (one core, as one Beam worker does it): read the file with `tf.io.gfile`,
`components.export_examples.photos.prepare_photo` (JPEGs that are RGB and no larger than `max_photo_side`
pass through byte for byte; others are decoded, converted and re-encoded), then
`components.export_examples.beam_pipeline.make_example` and its serialization. Table parsing, the leaf
model and the shard writing are outside the loop. The first pass warms the page cache and is not timed;
the figure is the median over `--passes` timed passes. Ends with `photos_per_s=<n>`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
from types import SimpleNamespace

from benchmarks._common import load_average, median, photo_files

import tensorflow as tf  # noqa: E402  (after _common sets the environment)

from inatvision.components.export_examples import photos as photo_checks  # noqa: E402
from inatvision.components.export_examples.beam_pipeline import PhotoRecord, make_example  # noqa: E402
from inatvision.components.export_examples.tables import Observation, Photo  # noqa: E402
from inatvision.config import production  # noqa: E402

LEAF_TAXON_ID = 12345


def _leaf_model():
    """The three things make_example reads from a LeafModel: a leaf's rank, its iconic taxon, its class id."""
    taxonomy = SimpleNamespace(taxa={LEAF_TAXON_ID: SimpleNamespace(rank="species")},
                               iconic_taxon=lambda taxon_id: "Plantae")
    return SimpleNamespace(taxonomy=taxonomy, leaf_class_ids={LEAF_TAXON_ID: 0})


def _record(index: int) -> PhotoRecord:
    observation = Observation(uuid=f"00000000-0000-0000-0000-{index:012d}", observer_id=1, latitude=37.77,
                              longitude=-122.42, positional_accuracy=10.0, taxon_id=LEAF_TAXON_ID,
                              quality_grade="research", observed_on=datetime.date(2021, 6, 1))
    photo = Photo(photo_id=index, photo_uuid=f"p-{index}", observation_uuid=observation.uuid, extension="jpg",
                  license="CC-BY-NC", width=None, height=None, position=0)
    return PhotoRecord("train", LEAF_TAXON_ID, observation, photo)


def one_pass(paths: list[str], records: list[PhotoRecord], leaf_model, min_side: int, max_side: int) -> dict:
    counts = {"passed_through": 0, "converted": 0, "rejected": 0, "example_bytes": 0}
    for path, record in zip(paths, records):
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        prepared = photo_checks.prepare_photo(data, min_side, max_side)
        if prepared.rejection:
            counts["rejected"] += 1
            continue
        counts["converted" if prepared.converted else "passed_through"] += 1
        counts["example_bytes"] += len(make_example(record, prepared.jpeg, leaf_model, 100))
    return counts


def main() -> None:
    export_config = production().export
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder of JPEGs, e.g. photos/<id>/medium.jpg")
    parser.add_argument("--passes", type=int, default=5, help="timed passes after one untimed pass")
    parser.add_argument("--max-side", type=int, default=export_config.max_photo_side,
                        help="export.max_photo_side: larger photos are converted (production: %(default)s)")
    parser.add_argument("--min-side", type=int, default=export_config.min_photo_side)
    args = parser.parse_args()

    paths = photo_files(args.photos)
    records = [_record(index) for index in range(len(paths))]
    leaf_model = _leaf_model()
    counts = one_pass(paths, records, leaf_model, args.min_side, args.max_side)  # warm-up, page cache
    rates, cpu_ms = [], []
    for _ in range(args.passes):
        start, cpu_start = time.perf_counter(), time.process_time()
        one_pass(paths, records, leaf_model, args.min_side, args.max_side)
        seconds = time.perf_counter() - start
        rates.append(len(paths) / seconds)
        cpu_ms.append(1000 * (time.process_time() - cpu_start) / len(paths))
    print(json.dumps({
        "photos": len(paths), "max_photo_side": args.max_side, **counts,
        "photos_per_s_passes": [round(r) for r in rates], "cpu_ms_per_photo": round(median(cpu_ms), 2),
        "processes": 1, "load_average": load_average()}))
    print(f"photos_per_s={median(rates):.0f}")


if __name__ == "__main__":
    main()

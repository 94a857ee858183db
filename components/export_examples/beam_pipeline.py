"""The export as a Beam pipeline: the same rules as the preview, scaled out by runner flags alone.

No step holds all observation or photo rows in one process: observations meet their photos
in a CoGroupByKey, per-taxon counts are combined, per-leaf caps use Top.PerKey. Only the
taxonomy and the per-taxon counts (one entry per taxon) travel as side inputs.
"""
from __future__ import annotations

import collections
import json
import os
import re
from typing import Iterable, NamedTuple

import apache_beam as beam
import tensorflow as tf

from inatvision import features
from inatvision.components.export_examples import photos as photo_checks, rules
from inatvision.components.export_examples.tables import (
    OBSERVATIONS, PHOTOS, REQUIRED_COLUMNS, TAXA, Observation, Photo, Rejection, Taxon, check_columns, iter_rows,
    parse_observation, parse_photo, parse_taxon, photo_path, read_header, row_observation_uuid,
)
from inatvision.components.export_examples.taxonomy import Taxonomy
from inatvision.taxonomy import TAXONOMY_FILE, write_taxonomy

MAX_EXAMPLES_PER_REASON = 5
TALLY_FILE = "tally.jsonl"
# The tables in the order the preview reads them, and their names in the report's `rows_read`. The examples of
# a reason found in several tables list them in this order, then by line, as the preview lists them.
TABLE_READ_ORDER = (TAXA, PHOTOS, OBSERVATIONS)
ROWS_READ_NAMES = {TAXA: "taxa", PHOTOS: "photos", OBSERVATIONS: "observations"}


class Event(NamedTuple):
    """Something counted for the export report: (category, reason) with an example (file:line, photo id)."""

    category: str
    reason: str
    example: str = ""


def _natural_key(example: str) -> tuple:
    """Numbers compare as numbers: `observations.csv:9` before `observations.csv:10`, so the examples kept are
    the first rows of a file, as the preview lists them."""
    return tuple(int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", example)))


def _example_key(example: str) -> tuple:
    """`file:line` examples table by table in TABLE_READ_ORDER, then the others (photo ids, paths, uuids), each
    in natural order."""
    table = example.rpartition(":")[0]
    rank = TABLE_READ_ORDER.index(table) if table in TABLE_READ_ORDER else len(TABLE_READ_ORDER)
    return rank, _natural_key(example)


def _first_examples(examples: Iterable[str]) -> list[str]:
    return sorted(set(examples), key=_example_key)[:MAX_EXAMPLES_PER_REASON]


class Tally(beam.CombineFn):
    """Count and the first few examples (in the preview's order, so the report is deterministic) per key."""

    def create_accumulator(self):
        return 0, []

    def add_input(self, accumulator, example):
        count, examples = accumulator
        return count + 1, _first_examples(examples + ([example] if example else []))

    def merge_accumulators(self, accumulators):
        count, examples = 0, []
        for more_count, more_examples in accumulators:
            count += more_count
            examples = _first_examples(examples + more_examples)
        return count, examples

    def extract_output(self, accumulator):
        return accumulator


class PhotoRecord(NamedTuple):
    split: str
    leaf_taxon_id: int
    observation: Observation
    photo: Photo


def _read_table(pipeline, path: str, table: str, parse, label: str):
    """(line, parsed row or Rejection); gzipped tables are not splittable, so rows fan out after one reader."""
    header_index = check_columns(path, read_header(path), REQUIRED_COLUMNS[table])
    return (pipeline
            | f"{label}Path" >> beam.Create([path])
            | f"{label}Rows" >> beam.FlatMap(iter_rows)
            | f"{label}Spread" >> beam.Reshuffle()
            | f"{label}Parse" >> beam.Map(lambda row: (row[0], parse(row[1], header_index, row[0]))))


def _parse_observation_row(fields: list[str], header_index: dict[str, int], line_no: int):
    """(the uuid the row names, its Observation or Rejection): a rejected row still has its uuid, so that its
    photos are not counted as photos without an observation row."""
    return row_observation_uuid(fields, header_index), parse_observation(fields, header_index, line_no)


def _rows_read(rows, table: str, label: str):
    """The tally entry of the rows read from `table` (0 for an empty table)."""
    return (rows
            | f"{label}Read" >> beam.combiners.Count.Globally()
            | f"{label}ReadKey" >> beam.Map(lambda count: (("rows_read", ROWS_READ_NAMES[table]), (count, []))))


def _orphan_events(joined):
    """Rejection events for the photo rows of an observation uuid that no observations.csv row names."""
    _, rows = joined
    if any(True for _ in rows["observations"]):
        return
    for line, _ in rows["photos"]:
        yield _rejection_event(rules.orphan_photo_rejection(line))


def _is_rejection(row) -> bool:
    return isinstance(row[1], Rejection)


def _rejection_event(rejection: Rejection) -> Event:
    return Event("rows_rejected", rejection.reason, f"{rejection.file}:{rejection.line}")


def _build_taxonomy(rows: list[tuple[int, Taxon]]) -> tuple[Taxonomy, list[Rejection]]:
    """The validated tree, rows in file order as the preview reads them."""
    rows = sorted(rows, key=lambda row: row[0])
    lines = {}
    for line, taxon in rows:
        lines.setdefault(taxon.taxon_id, line)
    return Taxonomy.from_taxa([taxon for _, taxon in rows], lines)


def _count_fn(grouped, allowed):
    """(taxon, research?) for an observation that counts toward the cut-off, or an Event."""
    uuid, (observations, photo_list) = grouped
    for observation in observations:
        has_allowed = any(rules.license_drop_reason(p.license, allowed) is None for p in photo_list)
        counted = rules.count_observation(observation, has_allowed)
        if isinstance(counted, str):
            yield beam.pvalue.TaggedOutput("events", Event("observations_not_counted", counted, uuid))
        else:
            yield counted


def _sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    observations = research = 0
    for more_observations, more_research in pairs:
        observations += more_observations
        research += more_research
    return observations, research


def _plan(grouped, leaf_model: rules.LeafModel, config):
    uuid, (observations, photo_list) = grouped
    for observation in observations:
        plan = rules.plan_observation(observation, photo_list, leaf_model, config)
        if isinstance(plan, str):
            yield beam.pvalue.TaggedOutput("events", Event("observations_dropped", plan, uuid))
            continue
        for reason, count in plan.dropped_photos.items():
            for _ in range(count):
                yield beam.pvalue.TaggedOutput("events", Event("photos_dropped", reason, uuid))
        for photo in plan.photos:
            yield PhotoRecord(plan.split, plan.leaf_taxon_id, observation, photo)


def _cap_split(records, split: str, cap: int, seed: int):
    """The `cap` photos with the lowest cap keys per leaf, and events for the rest."""
    keyed = (records
             | f"Key{split}" >> beam.Filter(lambda r: r.split == split)
             | f"ByLeaf{split}" >> beam.Map(lambda r: (r.leaf_taxon_id, (rules.cap_key(r.photo.photo_id, seed), r))))
    kept = (keyed
            | f"Cap{split}" >> beam.combiners.Top.PerKey(cap, key=lambda keyed_record: keyed_record[0], reverse=True)
            | f"Unkey{split}" >> beam.FlatMap(lambda leaf_kept: [record for _, record in leaf_kept[1]]))
    totals = keyed | f"Count{split}" >> beam.combiners.Count.PerKey()
    over_cap = (totals
                | f"Over{split}" >> beam.FlatMap(
                    lambda leaf_total: [Event("photos_dropped", rules.OVER_LEAF_CAP, str(leaf_total[0]))]
                    * max(0, leaf_total[1] - cap)))
    return kept, over_cap


def _feature_bytes(value: str | bytes) -> tf.train.Feature:
    data = value if isinstance(value, bytes) else value.encode()
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))


def _feature_int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _feature_float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def make_example(record: PhotoRecord, jpeg: bytes, leaf_model: rules.LeafModel, leaf_train_photos: int) -> bytes:
    """The serialized tf.Example of one photo (keys in inatvision/features.py)."""
    observation, photo = record.observation, record.photo
    taxonomy = leaf_model.taxonomy
    leaf = record.leaf_taxon_id
    feature = {
        features.IMAGE: _feature_bytes(jpeg),
        features.IMAGE_FORMAT: _feature_bytes(b"jpeg"),
        features.PHOTO_ID: _feature_int(photo.photo_id),
        features.OBSERVATION_UUID: _feature_bytes(observation.uuid),
        features.TAXON_ID: _feature_int(observation.taxon_id),
        features.LEAF_TAXON_ID: _feature_int(leaf),
        features.LABEL: _feature_int(leaf_model.leaf_class_ids[leaf]),
        features.LEAF_RANK: _feature_bytes(taxonomy.taxa[leaf].rank),
        features.LEAF_TRAIN_PHOTOS: _feature_int(leaf_train_photos),
        features.ICONIC_TAXON: _feature_bytes(taxonomy.iconic_taxon(leaf) or ""),
        features.QUALITY_GRADE: _feature_bytes(observation.quality_grade),
        features.LICENSE: _feature_bytes(photo.license.strip() or rules.UNKNOWN_LICENSE_NAME),
    }
    if observation.latitude is not None and observation.longitude is not None:
        feature[features.LATITUDE] = _feature_float(observation.latitude)
        feature[features.LONGITUDE] = _feature_float(observation.longitude)
    if observation.positional_accuracy is not None:
        feature[features.POSITIONAL_ACCURACY] = _feature_float(observation.positional_accuracy)
    if observation.observed_on is not None:
        feature[features.OBSERVED_ON] = _feature_bytes(observation.observed_on.isoformat())
        feature[features.DAY_OF_YEAR] = _feature_int(observation.observed_on.timetuple().tm_yday)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class _ToExample(beam.DoFn):
    """Reads, checks and converts the photo; emits (split, serialized example) or a rejection event."""

    def __init__(self, photo_root: str, config):
        self._photo_root, self._config = photo_root, config

    def process(self, record: PhotoRecord, leaf_model, leaf_train_photos):
        photo = record.photo
        path = photo_path(self._photo_root, photo.photo_id, self._config.photo_size, photo.extension or "jpg")
        if path is None:
            yield beam.pvalue.TaggedOutput("events", Event("photos_rejected", photo_checks.MISSING, str(photo.photo_id)))
            return
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        prepared = photo_checks.prepare_photo(data, self._config.min_photo_side, self._config.max_photo_side)
        if prepared.rejection:
            yield beam.pvalue.TaggedOutput("events", Event("photos_rejected", prepared.rejection, path))
            return
        if prepared.converted:
            yield beam.pvalue.TaggedOutput("events", Event("photos_converted", "converted_to_rgb_jpeg", path))
        yield beam.pvalue.TaggedOutput("events", Event("license", photo.license.strip() or rules.UNKNOWN_LICENSE_NAME))
        yield beam.pvalue.TaggedOutput("events", Event("examples", record.split))
        yield record.split, make_example(record, prepared.jpeg, leaf_model,
                                         leaf_train_photos.get(record.leaf_taxon_id, 0))


def _write_leaf_files(leaf_model: rules.LeafModel, taxonomy_dir: str) -> None:
    tf.io.gfile.makedirs(taxonomy_dir)
    write_taxonomy(rules.taxonomy_rows(leaf_model), os.path.join(taxonomy_dir, TAXONOMY_FILE))
    rules.write_taxa_report_csv(rules.taxa_report_rows(leaf_model), os.path.join(taxonomy_dir, "taxa_report.csv"))


def _tally_line(keyed) -> str:
    (category, reason), (count, examples) = keyed
    return json.dumps({"category": category, "reason": reason, "count": count, "examples": examples})


def build(pipeline, tables: dict[str, str], photo_root: str, config, examples_uri: str, taxonomy_dir: str,
          tally_dir: str) -> None:
    """Adds the whole export to `pipeline`; `tables` maps table names to paths (already checked)."""
    allowed = rules.allowed_licenses(config.licenses)
    taxa_rows = _read_table(pipeline, tables[TAXA], TAXA, parse_taxon, "Taxa")
    taxonomy_and_rejections = (
        taxa_rows
        | "ValidTaxa" >> beam.Filter(lambda row: not _is_rejection(row))
        | "AllTaxa" >> beam.combiners.ToList()
        | "Tree" >> beam.Map(_build_taxonomy))
    taxonomy = taxonomy_and_rejections | "Taxonomy" >> beam.Map(lambda pair: pair[0])
    events = [
        taxa_rows | "BadTaxa" >> beam.Filter(_is_rejection) | "TaxaEv" >> beam.Map(lambda row: _rejection_event(row[1])),
        taxonomy_and_rejections | "TreeRejects" >> beam.FlatMap(lambda pair: pair[1]) | "TreeEv" >> beam.Map(_rejection_event),
    ]

    def keep_observation(row, tree):
        line, (uuid, observation) = row
        if isinstance(observation, Rejection):
            return uuid, observation
        return uuid, rules.observation_rejection(observation, line, tree) or observation

    observation_rows = _read_table(pipeline, tables[OBSERVATIONS], OBSERVATIONS, _parse_observation_row, "Obs")
    observations = (observation_rows  # (uuid, Observation or Rejection)
                    | "KnownTaxon" >> beam.Map(keep_observation, beam.pvalue.AsSingleton(taxonomy)))
    photo_rows = _read_table(pipeline, tables[PHOTOS], PHOTOS, parse_photo, "Photos")  # (line, Photo or Rejection)
    read_counts = [_rows_read(taxa_rows, TAXA, "Taxa"), _rows_read(observation_rows, OBSERVATIONS, "Obs"),
                   _rows_read(photo_rows, PHOTOS, "Photos")]
    events += [
        observations | "BadObs" >> beam.Filter(_is_rejection) | "ObsEv" >> beam.Map(lambda kv: _rejection_event(kv[1])),
        photo_rows | "BadPhotos" >> beam.Filter(_is_rejection) | "PhotoEv" >> beam.Map(lambda row: _rejection_event(row[1])),
    ]
    # Every observation row with a uuid joins its photos, a rejected one as None: photos that meet no row at
    # all are counted (no_observation), those of a rejected row go with its rejection.
    joined = ({
        "observations": observations | "ObsWithUuid" >> beam.Filter(lambda kv: kv[0])
        | "ObsByUuid" >> beam.Map(lambda kv: (kv[0], kv[1] if isinstance(kv[1], Observation) else None)),
        "photos": photo_rows | "GoodPhotos" >> beam.Filter(lambda row: isinstance(row[1], Photo))
        | "PhotoByUuid" >> beam.Map(lambda row: (row[1].observation_uuid, row)),
    } | "Join" >> beam.CoGroupByKey())
    events.append(joined | "Orphans" >> beam.FlatMap(_orphan_events))
    grouped = joined | "Pair" >> beam.Map(lambda kv: (kv[0], (
        [o for o in kv[1]["observations"] if o is not None], [photo for _, photo in kv[1]["photos"]])))

    counted = grouped | "Count" >> beam.FlatMap(_count_fn, allowed).with_outputs("events", main="counts")
    counts = (counted.counts
              | "CountPairs" >> beam.Map(lambda tr: (tr[0], (1, int(tr[1]))))
              | "SumPerTaxon" >> beam.CombinePerKey(_sum_pairs))
    leaf_model = (taxonomy | "LeafModel" >> beam.Map(
        lambda tree, taxon_counts: rules.build_leaf_model(tree, taxon_counts, config.min_observations,
                                                          config.min_research_grade, config.max_leaf_rank),
        beam.pvalue.AsDict(counts)))
    _ = leaf_model | "WriteTaxonomy" >> beam.Map(_write_leaf_files, taxonomy_dir)

    planned = grouped | "Plan" >> beam.FlatMap(_plan, beam.pvalue.AsSingleton(leaf_model), config).with_outputs(
        "events", main="photos")
    events += [counted.events, planned.events]
    kept = []
    for split in features.SPLITS:
        split_kept, over_cap = _cap_split(planned.photos, split, rules.leaf_cap(split, config), config.seed)
        kept.append(split_kept)
        events.append(over_cap)
    kept = kept | "AllKept" >> beam.Flatten()
    leaf_train_photos = (kept
                         | "TrainOnly" >> beam.Filter(lambda r: r.split == "train")
                         | "TrainLeaf" >> beam.Map(lambda r: r.leaf_taxon_id)
                         | "TrainPerLeaf" >> beam.combiners.Count.PerElement())
    examples = kept | "ToExample" >> beam.ParDo(
        _ToExample(photo_root, config), beam.pvalue.AsSingleton(leaf_model), beam.pvalue.AsDict(leaf_train_photos)
    ).with_outputs("events", main="examples")
    events.append(examples.events)
    for split in features.SPLITS:
        _ = (examples.examples
             | f"Only{split}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
             | f"Bytes{split}" >> beam.Map(lambda kv: kv[1])
             | f"Write{split}" >> beam.io.WriteToTFRecord(
                 os.path.join(examples_uri, f"Split-{split}", "data_tfrecord"), num_shards=config.num_shards,
                 compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED))  # JPEGs: gzip gains nothing
    split_leaf_counts = (kept
                         | "SplitLeaf" >> beam.Map(lambda r: Event("leaf_photos", f"{r.split}:{r.leaf_taxon_id}")))
    events.append(split_leaf_counts)
    tallies = (events
               | "AllEvents" >> beam.Flatten()
               | "EventKey" >> beam.Map(lambda e: ((e.category, e.reason), e.example))
               | "Tally" >> beam.CombinePerKey(Tally()))
    _ = ([tallies, *read_counts]
         | "AllTallies" >> beam.Flatten()
         | "TallyJson" >> beam.Map(_tally_line)
         | "WriteTally" >> beam.io.WriteToText(os.path.join(tally_dir, "tally"), file_name_suffix=".jsonl",
                                               shard_name_template=""))


def read_tally(tally_dir: str) -> dict[str, dict[str, dict]]:
    """category -> reason -> {"count", "examples"} from the pipeline's tally file."""
    tally: dict = collections.defaultdict(dict)
    with tf.io.gfile.GFile(os.path.join(tally_dir, "tally.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            tally[row["category"]][row["reason"]] = {"count": row["count"], "examples": row["examples"]}
    return dict(tally)

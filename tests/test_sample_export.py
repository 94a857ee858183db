"""The generated Open Data export: formats, determinism, snapshots and the designed long tail."""
import collections
import csv
import os
import uuid

import pytest
from PIL import Image

from inatvision.sample_export.generator import (LICENSES, OBSERVATION_COLUMNS, OBSERVER_COLUMNS, PHOTO_COLUMNS,
                                    TAXON_COLUMNS, write_sample_export)

SMALL = {"species": 8, "seed": 3, "observations": 120}
DEMO_MIN_OBSERVATIONS, DEMO_MIN_RESEARCH_GRADE = 20, 10
ICONIC_IDS = {"Plantae": 47126, "Insecta": 47158, "Aves": 3, "Fungi": 47170}


def read_table(directory, name):
    with open(os.path.join(directory, name), encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file, delimiter="\t"))


def header(directory, name):
    with open(os.path.join(directory, name), encoding="utf-8") as file:
        return tuple(file.readline().rstrip("\n").split("\t"))


def all_files(directory):
    """Relative path -> bytes of every file under `directory`."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, directory)] = file.read()
    return files


def species_counts(directory):
    """Observations and research-grade observations per species-level taxon (subspecies rolled up)."""
    taxa = {row["taxon_id"]: row for row in read_table(directory, "taxa.csv")}
    observations, research = collections.Counter(), collections.Counter()
    for row in read_table(directory, "observations.csv"):
        taxon = row["taxon_id"]
        if taxa[taxon]["rank"] == "subspecies":
            taxon = taxa[taxon]["ancestry"].split("/")[-1]
        observations[taxon] += 1
        research[taxon] += row["quality_grade"] == "research"
    return taxa, observations, research


def genus_of(taxa, taxon):
    return next(ancestor for ancestor in reversed(taxa[taxon]["ancestry"].split("/"))
                if taxa[ancestor]["rank"] == "genus")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("small"))
    return directory, write_sample_export(directory, **SMALL)


@pytest.fixture(scope="module")
def small_doubled(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("doubled"))
    return directory, write_sample_export(directory, scale=2, **SMALL)


@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("demo"))
    return directory, write_sample_export(directory, species=24, tables_only=True)


def test_same_arguments_give_identical_bytes(small, tmp_path):
    directory, counts = small
    assert write_sample_export(str(tmp_path), **SMALL) == counts
    assert all_files(str(tmp_path)) == all_files(directory)


def test_tables_have_the_open_data_columns_and_the_returned_counts(small):
    directory, counts = small
    assert header(directory, "observations.csv") == OBSERVATION_COLUMNS
    assert header(directory, "photos.csv") == PHOTO_COLUMNS
    assert header(directory, "taxa.csv") == TAXON_COLUMNS
    assert header(directory, "observers.csv") == OBSERVER_COLUMNS
    observations = read_table(directory, "observations.csv")
    assert counts == {"taxa": len(read_table(directory, "taxa.csv")), "observations": SMALL["observations"],
                      "photos": len(read_table(directory, "photos.csv"))}
    observers = {row["observer_id"] for row in read_table(directory, "observers.csv")}
    assert {row["observer_id"] for row in observations} <= observers
    identifiers = [row["observation_uuid"] for row in observations]
    assert len(set(identifiers)) == len(identifiers)
    assert all(uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value for value in identifiers)


def test_photos_decode_and_match_the_table(small):
    directory, _ = small
    photos = read_table(directory, "photos.csv")
    photo_ids = [row["photo_id"] for row in photos]
    assert len(set(photo_ids)) == len(photo_ids)
    assert sorted(os.listdir(os.path.join(directory, "photos"))) == sorted(photo_ids)
    positions = collections.defaultdict(list)
    for row in photos:
        positions[row["observation_uuid"]].append(int(row["position"]))
        assert row["extension"] == "jpg" and row["license"] in LICENSES
        with Image.open(os.path.join(directory, "photos", row["photo_id"], "medium.jpg")) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (int(row["width"]), int(row["height"]))
            assert 300 <= image.width <= 500 and 300 <= image.height <= 500
    assert all(sorted(found) == list(range(len(found))) and len(found) <= 5 for found in positions.values())
    assert set(positions) == {row["observation_uuid"] for row in read_table(directory, "observations.csv")}


def test_a_doubled_snapshot_keeps_every_observation_and_photo(small, small_doubled):
    (directory, counts), (doubled, doubled_counts) = small, small_doubled
    assert doubled_counts["observations"] == 2 * counts["observations"]
    later = {row["observation_uuid"]: row for row in read_table(doubled, "observations.csv")}
    upgraded = 0
    for row in read_table(directory, "observations.csv"):
        same = later[row["observation_uuid"]]
        if row["quality_grade"] != same["quality_grade"]:
            assert (row["quality_grade"], same["quality_grade"]) == ("needs_id", "research")
            upgraded += 1
        assert {**row, "quality_grade": ""} == {**same, "quality_grade": ""}
    assert upgraded > 0
    later_photos = {row["photo_id"]: row for row in read_table(doubled, "photos.csv")}
    for row in read_table(directory, "photos.csv"):
        assert later_photos[row["photo_id"]] == row
        path = os.path.join("photos", row["photo_id"], "medium.jpg")
        with open(os.path.join(directory, path), "rb") as first, open(os.path.join(doubled, path), "rb") as second:
            assert first.read() == second.read()
    assert read_table(doubled, "taxa.csv") == read_table(directory, "taxa.csv")


def test_ancestry_paths_are_consistent(demo_tables):
    directory, _ = demo_tables
    taxa = {row["taxon_id"]: row for row in read_table(directory, "taxa.csv")}
    assert taxa["48460"]["ancestry"] == "" and taxa["48460"]["rank"] == "stateofmatter"
    for row in taxa.values():
        assert row["active"] in ("true", "false")
        if row["taxon_id"] == "48460":
            continue
        path = row["ancestry"].split("/")
        assert path[0] == "48460" and all(ancestor in taxa for ancestor in path)
        assert int(taxa[path[-1]]["rank_level"]) > int(row["rank_level"])
        assert taxa[path[-1]]["ancestry"] == "/".join(path[:-1])
    for name, taxon_id in ICONIC_IDS.items():
        assert taxa[str(taxon_id)]["name"] == name


def test_the_demo_thresholds_see_a_long_tail(demo_tables):
    directory, counts = demo_tables
    taxa, observations, research = species_counts(directory)
    qualifies = {taxon: observations[taxon] >= DEMO_MIN_OBSERVATIONS and research[taxon] >= DEMO_MIN_RESEARCH_GRADE
                 for taxon in observations}
    active = [taxon for taxon, row in taxa.items() if row["rank"] == "species" and row["active"] == "true"]
    assert len(active) == 24
    assert 0.6 <= sum(qualifies.get(taxon, False) for taxon in active) / len(active) <= 0.75
    assert 40 <= max(observations.values()) <= 120
    assert min(observations[taxon] for taxon in active) <= 3  # far below the cut-off
    assert 1500 <= counts["photos"] <= 2500

    excluded = [taxon for taxon, row in taxa.items() if row["rank"] == "hybrid" or row["active"] == "false"]
    assert sorted(taxa[taxon]["rank"] for taxon in excluded) == ["hybrid", "species"]
    assert all(qualifies[taxon] for taxon in excluded)  # only their exclusion keeps them out

    genera = collections.defaultdict(list)
    for taxon in active:
        genera[genus_of(taxa, taxon)].append(taxon)
    pooled_leaf = [species for species in genera.values()
                   if not any(qualifies.get(taxon, False) for taxon in species)
                   and sum(observations[taxon] for taxon in species) >= DEMO_MIN_OBSERVATIONS
                   and sum(research[taxon] for taxon in species) >= DEMO_MIN_RESEARCH_GRADE]
    mixed = [species for species in genera.values()
             if len({qualifies.get(taxon, False) for taxon in species}) == 2]
    assert pooled_leaf and mixed

    subspecies_parents = {taxa[row["taxon_id"]]["ancestry"].split("/")[-1]
                          for row in read_table(directory, "observations.csv")
                          if taxa[row["taxon_id"]]["rank"] == "subspecies"}
    assert any(qualifies[taxon] for taxon in subspecies_parents)


def test_tables_only_writes_no_photos(demo_tables):
    directory, counts = demo_tables
    assert not os.path.exists(os.path.join(directory, "photos"))
    assert counts["photos"] == len(read_table(directory, "photos.csv")) > 0


def test_grades_places_and_dates_are_realistic(tmp_path):
    write_sample_export(str(tmp_path), species=40, seed=1, observations=20_000, tables_only=True)
    rows = read_table(str(tmp_path), "observations.csv")
    assert len(rows) == 20_000
    grades = collections.Counter(row["quality_grade"] for row in rows)
    assert abs(grades["research"] / len(rows) - 0.6) < 0.03
    assert abs(grades["needs_id"] / len(rows) - 0.3) < 0.03
    assert abs(grades["casual"] / len(rows) - 0.1) < 0.02
    no_place = [row for row in rows if row["latitude"] == ""]
    assert 0.03 < len(no_place) / len(rows) < 0.07
    assert all(row["quality_grade"] == "casual" and row["longitude"] == "" for row in no_place)
    placed = [row for row in rows if row["latitude"] != ""]
    assert all(-90 <= float(row["latitude"]) <= 90 and -180 <= float(row["longitude"]) < 180 for row in placed)
    accuracies = [int(row["positional_accuracy"]) for row in placed if row["positional_accuracy"]]
    assert sum(5 <= metres <= 5000 for metres in accuracies) / len(accuracies) > 0.9
    assert any(metres > 50_000 for metres in accuracies)
    assert len(accuracies) < len(placed)
    years = {row["observed_on"][:4] for row in rows if row["observed_on"]}
    assert years == {str(year) for year in range(2015, 2025)}

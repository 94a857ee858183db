"""Reading Open Data tables row by row, finding photo files, and converting an export-tool CSV."""
import datetime
import gzip

import pytest

from inatvision.components.export_examples import convert, tables
from inatvision.components.export_examples.tables import InputError, Observation, Rejection

OBSERVATION_HEADER = ["observation_uuid", "observer_id", "latitude", "longitude", "positional_accuracy",
                      "taxon_id", "quality_grade", "observed_on"]
OBSERVATION_INDEX = {name: i for i, name in enumerate(OBSERVATION_HEADER)}


def parse_observation(line, line_no=2):
    return tables.parse_observation(line.split("\t"), OBSERVATION_INDEX, line_no)


def test_a_good_observation():
    parsed = parse_observation("u1\t505\t38.5\t-122.7\t24\t53137\tresearch\t2011-05-30")
    assert parsed == Observation("u1", 505, 38.5, -122.7, 24.0, 53137, "research", datetime.date(2011, 5, 30))


def test_missing_coordinates_and_dates_are_unknown_not_errors():
    parsed = parse_observation("u1\t\t\t\t\t53137\tcasual\t")
    assert (parsed.latitude, parsed.longitude, parsed.observed_on, parsed.observer_id) == (None, None, None, None)
    half = parse_observation("u1\t1\t38.5\t\t\t53137\tneeds_id\t2011-05-30")
    assert (half.latitude, half.longitude) == (None, None)


def test_columns_a_table_lacks_read_as_unknown():
    index = {"taxon_id": 0, "observation_uuid": 1, "quality_grade": 2}
    parsed = tables.parse_observation(["5", "u1", "Research"], index, 2)
    assert parsed == Observation("u1", None, None, None, None, 5, "research", None)


@pytest.mark.parametrize("line, reason", [
    ("u1\t1\t1\t1\t\t5\tcasual\t\t2011-06-03", "wrong_field_count"),  # the stray tab of open-data-format
    ("u1\t1\t91\t1\t\t5\tresearch\t2011-06-03", "latitude_out_of_range"),
    ("u1\t1\t1\t-181\t\t5\tresearch\t2011-06-03", "longitude_out_of_range"),
    ("u1\t1\tnan\t1\t\t5\tresearch\t2011-06-03", "latitude_out_of_range"),
    ("u1\t1\t1\t1\tinf\t5\tresearch\t2011-06-03", "bad_number"),
    ("u1\tx\t1\t1\t\t5\tresearch\t2011-06-03", "bad_number"),
    ("u1\t1\t1\t1\t\t\tresearch\t2011-06-03", "missing_taxon"),
    ("u1\t1\t1\t1\t\t5.5\tresearch\t2011-06-03", "bad_number"),
    ("u1\t1\t1\t1\t\t5\tgreat\t2011-06-03", "bad_quality_grade"),
    ("u1\t1\t1\t1\t\t5\tresearch\t2011-13-03", "bad_date"),
    ("\t1\t1\t1\t\t5\tresearch\t2011-06-03", "missing_uuid"),
])
def test_rejected_observations(line, reason):
    assert parse_observation(line, 27) == Rejection(reason, 27, "observations.csv")


def test_a_rejected_row_still_names_its_observation():
    """So that its photos are not counted as photos without an observation row (`no_observation`)."""
    fields = "u1\t1\t1\t1\t\t5\tcasual\t\t2011-06-03".split("\t")
    assert tables.parse_observation(fields, OBSERVATION_INDEX, 2).reason == "wrong_field_count"
    assert tables.row_observation_uuid(fields, OBSERVATION_INDEX) == "u1"
    assert tables.row_observation_uuid([" u2 "], {"photo_id": 0, "observation_uuid": 1}) == ""  # too short
    assert tables.row_observation_uuid(["7", " u2 "], {"photo_id": 0, "observation_uuid": 1}) == "u2"


def test_photo_rows():
    header = ["photo_uuid", "photo_id", "observation_uuid", "observer_id", "extension", "license", "width",
              "height", "position"]
    index = {name: i for i, name in enumerate(header)}
    parsed = tables.parse_photo("p\t35927\tu1\t505\tJPG\tCC-BY\t2048\t1356\t2".split("\t"), index, 2)
    assert (parsed.photo_id, parsed.extension, parsed.license, parsed.position) == (35927, "jpg", "CC-BY", 2)
    no_licence = tables.parse_photo("p\t1\tu1\t\tjpeg\t\t\t\t".split("\t"), index, 3)
    assert (no_licence.license, no_licence.width, no_licence.position) == ("", None, 0)
    assert tables.parse_photo("p\tx\tu1\t\tjpg\t\t\t\t0".split("\t"), index, 4) == Rejection("bad_number", 4, "photos.csv")


def test_taxon_rows():
    index = {name: i for i, name in enumerate(tables.FIELDS[tables.TAXA])}
    taxon = tables.parse_taxon("27440\t48460/1/27438\t5\tSubspecies\tCalamaria j. j.\tfalse".split("\t"), index, 2)
    assert (taxon.parent_id, taxon.ancestry, taxon.rank_level, taxon.rank, taxon.active) == (
        27438, (48460, 1, 27438), 5.0, "subspecies", False)
    life = tables.parse_taxon("48460\t\t100\tstateofmatter\tLife\ttrue".split("\t"), index, 3)
    assert (life.parent_id, life.ancestry) == (None, ())
    assert tables.parse_taxon("1\t48460/x\t70\tkingdom\tA\ttrue".split("\t"), index, 4).reason == "bad_number"
    assert tables.parse_taxon("1\t48460\t70\tkingdom\tA\tmaybe".split("\t"), index, 5).reason == "bad_boolean"


def test_reading_a_gzipped_table_with_quotes_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "taxa.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        f.write('\ufefftaxon_id\tname\r\n1\t"Quoted ""name"""\r\n\n3\tO\'Brien "the" oak\r\n')
    assert tables.find_table(str(tmp_path), "taxa.csv") == str(path)
    assert tables.read_header(str(path)) == ["taxon_id", "name"]
    assert list(tables.iter_rows(str(path))) == [(2, ["1", 'Quoted "name"']), (4, ["3", 'O\'Brien "the" oak'])]


def test_missing_files_and_columns_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: missing photos.csv"):
        tables.find_table(str(tmp_path), "photos.csv")
    with pytest.raises(InputError, match=f"{tmp_path / 'nope'}: export folder not found"):
        tables.find_table(str(tmp_path / "nope"), "photos.csv")
    (tmp_path / "photos.csv").write_text("photo_id\tobservation_uuid\textension\n")
    path = str(tmp_path / "photos.csv")
    with pytest.raises(InputError, match="photos.csv: missing column 'license'"):
        tables.check_columns(path, tables.read_header(path), tables.REQUIRED_COLUMNS["photos.csv"])
    with pytest.raises(InputError, match="appears twice"):
        tables.check_columns(path, ["a", "a"], ["a"])


def test_photo_path_falls_back_to_another_extension(tmp_path):
    (tmp_path / "photos" / "7").mkdir(parents=True)
    (tmp_path / "photos" / "7" / "medium.JPEG").write_bytes(b"x")
    (tmp_path / "photos" / "8").mkdir()
    (tmp_path / "photos" / "8" / "medium.jpg").write_bytes(b"x")
    root = str(tmp_path)
    assert tables.photo_path(root, 7, "medium", "jpg") == f"{root}/photos/7/medium.JPEG"
    assert tables.photo_path(root, 8, "medium", "jpg") == f"{root}/photos/8/medium.jpg"
    assert tables.photo_path(root, 8, "small", "jpg") is None
    assert tables.photo_path(root, 9, "medium", "jpg") is None


EXPORT_HEADER = ("id,uuid,observed_on,user_id,quality_grade,license,image_url,latitude,longitude,"
                 "positional_accuracy,public_positional_accuracy,scientific_name,taxon_id,taxon_kingdom_name,"
                 "taxon_family_name,taxon_genus_name,taxon_species_name,taxon_subspecies_name\n")


def test_convert_rebuilds_the_tree_from_rank_names(tmp_path):
    url = "https://inaturalist-open-data.s3.amazonaws.com/photos/{}/medium.{}"
    csv_path = tmp_path / "export.csv"
    csv_path.write_text(EXPORT_HEADER + "".join([
        f"1,u1,2020-01-02,9,research,CC-BY,{url.format(11, 'jpeg')},1.5,2.5,10,40,Quercus agrifolia,201,"
        "Plantae,Fagaceae,Quercus,Quercus agrifolia,\n",
        f"2,u2,,9,needs_id,,{url.format(12, 'png')},,,,,Quercus agrifolia oxyadenia,203,"
        "Plantae,Fagaceae,Quercus,Quercus agrifolia,Quercus agrifolia oxyadenia\n",
        f"3,u3,2020-01-02,9,research,CC0,,,,,,Lobatae,210,Plantae,Fagaceae,Quercus,,\n",
        "4,u1,2020-01-02,9,research,CC0,,,,,,Quercus,200,Plantae,Fagaceae,Quercus,,\n",
        "5,u5,2020-01-02,9,research,CC0,,,,,,,,Plantae,Fagaceae,Quercus,,\n",
    ]))
    photos_dir = tmp_path / "downloads"
    photos_dir.mkdir()
    (photos_dir / "11.jpeg").write_bytes(b"jpeg bytes")
    out = tmp_path / "converted"
    report = convert.convert_export_tool_csv(str(csv_path), str(photos_dir), str(out))
    assert report == {"observations": 3, "photos": 2, "taxa": 7, "skipped": {"duplicate_observation": 1,
                      "missing_taxon": 1}, "no_image_url": 1, "photo_files_copied": 1, "photo_files_missing": 1}
    assert (out / "photos" / "11" / "medium.jpeg").read_bytes() == b"jpeg bytes"

    taxa = {line.split("\t")[4]: line.split("\t") for line in (out / "taxa.csv").read_text().splitlines()[1:]}
    plantae = convert.stable_taxon_id((("kingdom", "Plantae"),))
    fagaceae = convert.stable_taxon_id((("kingdom", "Plantae"), ("family", "Fagaceae")))
    quercus = convert.stable_taxon_id((("kingdom", "Plantae"), ("family", "Fagaceae"), ("genus", "Quercus")))
    assert plantae >= convert.STABLE_ID_BASE and len({plantae, fagaceae, quercus}) == 3
    assert taxa["Plantae"] == [str(plantae), "48460", "70", "kingdom", "Plantae", "true"]
    assert taxa["Quercus"] == [str(quercus), f"48460/{plantae}/{fagaceae}", "20", "genus", "Quercus", "true"]
    assert taxa["Quercus agrifolia"][:4] == ["201", f"48460/{plantae}/{fagaceae}/{quercus}", "10", "species"]
    assert taxa["Quercus agrifolia oxyadenia"][:4] == ["203", f"48460/{plantae}/{fagaceae}/{quercus}/201", "5",
                                                       "subspecies"]
    assert taxa["Lobatae"][:4] == ["210", f"48460/{plantae}/{fagaceae}/{quercus}", "19", "unranked"]

    observations = (out / "observations.csv").read_text().splitlines()
    assert observations[1] == "u1\t9\t1.5\t2.5\t40\t201\tresearch\t2020-01-02"
    photos = (out / "photos.csv").read_text().splitlines()
    assert photos[1:] == ["\t11\tu1\t9\tjpeg\tCC-BY\t\t\t0", "\t12\tu2\t9\tpng\tall-rights-reserved\t\t\t0"]


def test_stable_ids_do_not_depend_on_the_rest_of_the_export():
    path = (("kingdom", "Animalia"), ("class", "Aves"))
    assert convert.stable_taxon_id(path) == convert.stable_taxon_id(tuple(path))
    assert convert.stable_taxon_id(path) != convert.stable_taxon_id((("kingdom", "Plantae"), ("class", "Aves")))
    assert convert.stable_taxon_id(path) < 2**53


def test_lowest_id_keeps_a_name_path_claimed_twice(tmp_path):
    csv_path = tmp_path / "export.csv"
    csv_path.write_text(EXPORT_HEADER + "".join(
        f"{i},u{i},,9,research,CC0,,,,,,Agapostemon,{taxon_id},Animalia,Halictidae,Agapostemon,,\n"
        for i, taxon_id in enumerate([606634, 50086, 606634])))
    convert.convert_export_tool_csv(str(csv_path), None, str(tmp_path / "out"))
    rows = [line.split("\t") for line in (tmp_path / "out" / "taxa.csv").read_text().splitlines()[1:]]
    by_id = {row[0]: row for row in rows}
    assert by_id["50086"][3] == "genus"
    assert by_id["606634"][1].endswith("/50086") and by_id["606634"][3] == "unranked"

"""The taxonomy.csv contract's one owner (inatvision/taxonomy.py): format, reader, leaf order, ranks."""
import inspect
import re
import subprocess
import sys

import pytest

from inatvision import artifacts, taxonomy
from inatvision.taxonomy import (COLUMNS, GENUS_LEVEL, RANK_LEVELS, SPECIES_LEVEL, TaxonomyError, TaxonRow, TaxonTree,
                                 read_table, read_taxonomy, write_taxonomy)

HEADER = "parent_taxon_id,taxon_id,rank_level,leaf_class_id,iconic_class_id,spatial_class_id,name,rank"
ROWS = [  # two kingdoms; the leaves are numbered in taxon id order, one of them a genus
    TaxonRow(None, 1, 70.0, None, 10, None, "Animalia", "kingdom"),
    TaxonRow(47126, 200, 20.0, 0, 0, 0, "Quercus", "genus"),
    TaxonRow(47157, 210, 33.5, None, 1, None, "Zoosub, with a comma", "zoosubsection"),
    TaxonRow(210, 211, 10.0, 1, 1, 1, "Apis mellifera", "species"),
    TaxonRow(None, 47126, 70.0, None, 0, None, "Plantae", "kingdom"),
    TaxonRow(1, 47157, 50.0, None, 1, None, "Insecta", "class"),
]


def write_text(tmp_path, lines, name="taxonomy.csv"):
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_the_writer_writes_the_contract_bytes_and_the_reader_reads_them_back(tmp_path):
    path = str(tmp_path / taxonomy.TAXONOMY_FILE)
    write_taxonomy(ROWS, path)
    data = open(path, "rb").read()
    assert data.decode().splitlines()[0] == HEADER == ",".join(COLUMNS)
    assert b"\r" not in data and data.endswith(b"\n")
    assert b"\n,1,70,,10,,Animalia,kingdom\n" in data  # None empty, integral floats without .0
    assert b'47157,210,33.5,,1,,"Zoosub, with a comma",zoosubsection\n' in data
    tree = read_taxonomy(path)
    assert tree.rows == tuple(ROWS) and tree.source == path
    assert isinstance(tree.rows[0].taxon_id, int) and isinstance(tree.rows[0].rank_level, float)
    write_taxonomy(tree.rows, str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == data


def test_remote_paths_go_through_tf_io_gfile_with_the_same_bytes(tmp_path):
    import tensorflow as tf

    remote = "ram://taxonomy-test/taxonomy.csv"
    tf.io.gfile.makedirs("ram://taxonomy-test")
    write_taxonomy(ROWS, remote)
    write_taxonomy(ROWS, str(tmp_path / "local.csv"))
    with tf.io.gfile.GFile(remote, "rb") as f:
        assert f.read() == (tmp_path / "local.csv").read_bytes()
    assert read_taxonomy(remote).rows == tuple(ROWS)


def test_leaves_are_in_class_id_order_and_counted(tmp_path):
    lines = [HEADER, ",1,70,,,,Root,kingdom", "1,5,10,2,,2,e,species", "1,6,10,0,,0,f,species",
             "1,7,10,1,,1,g,species"]
    tree = read_taxonomy(write_text(tmp_path, lines))
    assert tree.num_classes == 3 and tree.num_nodes == 4
    assert tree.leaf_taxon_ids == [6, 7, 5] and tree.leaf_names == ["f", "g", "e"]
    assert [row.is_leaf for row in tree.rows] == [False, True, True, True]
    assert tree.taxon_ids == (1, 5, 6, 7) and tree.rank_levels == (70.0, 10.0, 10.0, 10.0)
    empty = read_taxonomy(write_text(tmp_path, [HEADER], "empty.csv"))
    assert empty.num_classes == 0 and empty.leaf_taxon_ids == []


@pytest.mark.parametrize("class_ids", [(0, 2), (1, 2), (0, 0)])
def test_a_leaf_order_that_is_not_dense_names_the_file(tmp_path, class_ids):
    lines = [HEADER] + [f",{taxon},10,{index},,{index},s{taxon},species" for taxon, index in zip((5, 6), class_ids)]
    path = write_text(tmp_path, lines)
    with pytest.raises(TaxonomyError, match=f"^{re.escape(path)}: leaf_class_id is not dense 0..1$"):
        read_taxonomy(path)
    with pytest.raises(ValueError, match="my.csv: leaf_class_id is not dense"):
        TaxonTree(tuple(ROWS[:1]) + (ROWS[1]._replace(leaf_class_id=4),), source="my.csv")


def test_other_columns_or_bad_cells_fail_naming_the_file(tmp_path):
    path = write_text(tmp_path, ["taxon_id,name", "1,Animalia"])
    with pytest.raises(TaxonomyError, match=f"^{re.escape(path)}: expected columns {HEADER}, got"):
        read_taxonomy(path)
    path = write_text(tmp_path, [HEADER, ",1,70,,10,,Animalia,kingdom", ",x2,70,,,,Bad,kingdom"], "bad.csv")
    with pytest.raises(TaxonomyError, match=f"^{re.escape(path)}: line 3: invalid literal"):
        read_taxonomy(path)
    path = write_text(tmp_path, [HEADER, ",1,70"], "short.csv")
    with pytest.raises(TaxonomyError, match=f"^{re.escape(path)}: line 2"):
        read_taxonomy(path)


def test_read_table_gives_a_broken_file_as_text_for_the_checks(tmp_path):
    header, rows = read_table(write_text(tmp_path, ["taxon_id,name", "x1,Animalia"]))
    assert header == ["taxon_id", "name"] and rows == [{"taxon_id": "x1", "name": "Animalia"}]


def test_the_roll_up_structure_lists_the_leaves_at_or_below_each_node(tmp_path):
    path = str(tmp_path / "taxonomy.csv")
    write_taxonomy(ROWS, path)
    tree = read_taxonomy(path)
    # Animalia, Quercus, the zoosubsection, Apis mellifera, Plantae, Insecta (rows in file order)
    assert tree.leaves_below == ((1,), (0,), (1,), (1,), (0,), (1,))
    assert tree.leaf_node_pairs() == [(0, 1), (0, 4), (1, 0), (1, 2), (1, 3), (1, 5)]
    cycle = write_text(tmp_path, [HEADER, "3,2,20,,,,a,genus", "2,3,10,0,,0,b,species"], "cycle.csv")
    with pytest.raises(TaxonomyError, match=f"^{re.escape(cycle)}: taxonomy has a cycle through taxon"):
        read_taxonomy(cycle).leaves_below


def test_one_rank_table_for_the_export_the_served_ancestor_and_the_sample_generator():
    from inatvision.components.export_examples import convert, rules
    from inatvision.components.geo_prior import scoring
    from inatvision.sample_export import generator

    assert (RANK_LEVELS["species"], RANK_LEVELS["genus"], RANK_LEVELS["kingdom"]) == (10, 20, 70)
    assert RANK_LEVELS["zoosubsection"] == 33.5 and RANK_LEVELS["stateofmatter"] == 100
    assert (SPECIES_LEVEL, GENUS_LEVEL) == (10.0, 20.0)
    assert rules.RANK_LEVELS is convert.RANK_LEVELS is generator.RANK_LEVELS is RANK_LEVELS
    assert inspect.signature(scoring.common_ancestor).parameters["min_rank_level"].default == GENUS_LEVEL
    assert generator.LIFE_TAXON_ID == rules.LIFE_TAXON_ID == taxonomy.LIFE_TAXON_ID == 48460


def test_file_names():
    assert taxonomy.TAXONOMY_FILE == "taxonomy.csv"
    assert taxonomy.MODEL_TAXONOMY_FILE == "assets/taxonomy.csv"


def test_num_classes_travels_on_the_taxonomy_artifact():
    artifact = artifacts.Taxonomy()
    artifact.uri = "/tmp/taxonomy"
    with pytest.raises(ValueError, match="/tmp/taxonomy has no custom property 'num_classes'"):
        artifacts.num_classes(artifact)
    artifacts.set_num_classes(artifact, 7)
    assert artifacts.num_classes(artifact) == 7 and artifact.get_int_custom_property("num_classes") == 7


def test_importing_the_owner_loads_no_tensorflow(tmp_path):
    path = str(tmp_path / "taxonomy.csv")
    write_taxonomy(ROWS, path)
    code = ("import sys; from inatvision import taxonomy; "
            f"assert taxonomy.read_taxonomy({path!r}).num_classes == 2; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)

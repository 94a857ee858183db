"""The export stage's domain rules on tiny hand-made trees: leaf model, splits, photos, caps, taxonomy.csv."""
import pickle

import pytest

from inatvision.components.export_examples import rules
from inatvision.components.export_examples.tables import Observation, Photo, Taxon
from inatvision.components.export_examples.taxonomy import Taxonomy
from inatvision.config import ExportConfig
from inatvision.taxonomy import RANK_LEVELS, read_taxonomy, write_taxonomy

LIFE, PLANTAE, ANIMALIA, INSECTA = 48460, 47126, 1, 47158
FAGACEAE, QUERCUS, AGRIFOLIA, LOBATA, OXYADENIA = 100, 200, 201, 202, 203
LOBATAE, KELLOGGII, DUMOSA_COMPLEX, DUMOSA = 210, 211, 220, 221
HYBRID, INACTIVE, INACTIVE_SUBSPECIES = 230, 240, 241
NOTHOLITHOCARPUS, DENSIFLORUS = 300, 301
APIS, MELLIFERA = 500, 501

# (taxon id, parent id, rank, name, active)
TREE = [
    (LIFE, None, "stateofmatter", "Life", True),
    (PLANTAE, LIFE, "kingdom", "Plantae", True),
    (FAGACEAE, PLANTAE, "family", "Fagaceae", True),
    (QUERCUS, FAGACEAE, "genus", "Quercus", True),
    (AGRIFOLIA, QUERCUS, "species", "Quercus agrifolia", True),
    (LOBATA, QUERCUS, "species", "Quercus lobata", True),
    (OXYADENIA, AGRIFOLIA, "subspecies", "Quercus agrifolia oxyadenia", True),
    (LOBATAE, QUERCUS, "subgenus", "Lobatae", True),
    (KELLOGGII, LOBATAE, "species", "Quercus kelloggii", True),
    (DUMOSA_COMPLEX, QUERCUS, "complex", "Quercus dumosa complex", True),
    (DUMOSA, DUMOSA_COMPLEX, "species", "Quercus dumosa", True),
    (HYBRID, QUERCUS, "hybrid", "Quercus × macdonaldii", True),
    (INACTIVE, QUERCUS, "species", "Quercus wislizeni", False),
    (INACTIVE_SUBSPECIES, INACTIVE, "subspecies", "Quercus wislizeni frutescens", True),
    (NOTHOLITHOCARPUS, FAGACEAE, "genus", "Notholithocarpus", True),
    (DENSIFLORUS, NOTHOLITHOCARPUS, "species", "Notholithocarpus densiflorus", True),
    (ANIMALIA, LIFE, "kingdom", "Animalia", True),
    (INSECTA, ANIMALIA, "class", "Insecta", True),
    (APIS, INSECTA, "genus", "Apis", True),
    (MELLIFERA, APIS, "species", "Apis mellifera", True),
]


def make_taxa(spec):
    parents = {taxon_id: parent for taxon_id, parent, *_ in spec}

    def ancestry(taxon_id):
        chain, current = [], parents[taxon_id]
        while current is not None:
            chain.append(current)
            current = parents.get(current)
        return tuple(reversed(chain))

    return [Taxon(taxon_id, parent, ancestry(taxon_id), float(RANK_LEVELS[rank]), rank, name, active)
            for taxon_id, parent, rank, name, active in spec]


@pytest.fixture(scope="module")
def taxonomy():
    built, rejections = Taxonomy.from_taxa(make_taxa(TREE))
    assert rejections == []
    return built


def model(taxonomy, counts, min_observations=10, min_research_grade=5, max_leaf_rank="genus"):
    return rules.build_leaf_model(taxonomy, counts, min_observations, min_research_grade, max_leaf_rank)


def status(leaf_model, taxon_id):
    return leaf_model.outcomes[taxon_id].status


# ---------------------------------------------------------------- leaf model


def test_a_qualifying_species_is_a_leaf(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5)})
    assert leaves.leaf_class_ids == {AGRIFOLIA: 0}
    assert leaves.leaf_for(AGRIFOLIA) == AGRIFOLIA
    assert status(leaves, AGRIFOLIA) == "species_leaf"
    assert leaves.outcomes[AGRIFOLIA].reason == "qualifies with 10 observations, 5 research-grade"
    assert {status(leaves, node) for node in (QUERCUS, FAGACEAE, PLANTAE, LIFE)} == {"inner"}
    assert leaves.outcomes[QUERCUS].reason == "inner node: 1 descendant leaf"


def test_genus_leaf_when_no_species_qualifies(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (6, 3), LOBATA: (6, 3)})
    assert leaves.leaf_class_ids == {QUERCUS: 0}
    assert leaves.leaf_for(AGRIFOLIA) == leaves.leaf_for(LOBATA) == QUERCUS
    assert status(leaves, QUERCUS) == "genus_leaf"
    assert leaves.outcomes[QUERCUS].observations == 12
    assert status(leaves, AGRIFOLIA) == "below_cutoff"
    assert leaves.outcomes[AGRIFOLIA].reason == (
        "needs 4 more observations and 2 more research-grade observations; data passed to genus Quercus")


def test_genus_stays_inner_when_one_species_qualifies(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5), LOBATA: (9, 9)})
    assert leaves.leaf_class_ids == {AGRIFOLIA: 0}
    assert leaves.leaf_for(LOBATA) is None
    assert leaves.drop_reason(LOBATA) == rules.INNER_NODE
    assert status(leaves, QUERCUS) == "inner"
    assert leaves.outcomes[QUERCUS].reason == "inner node: 1 descendant leaf; 9 observations here not used"
    assert leaves.outcomes[LOBATA].reason == (
        "needs 1 more observations; data not used: it reaches inner node genus Quercus")


def test_data_climbing_past_the_leaf_ranks_is_below_cutoff_not_inner(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5), DENSIFLORUS: (3, 3)})
    assert status(leaves, FAGACEAE) == "inner"
    assert leaves.drop_reason(DENSIFLORUS) == rules.BELOW_CUTOFF
    assert leaves.outcomes[NOTHOLITHOCARPUS].reason == (
        "needs 7 more observations and 2 more research-grade observations; data not used: no ancestor qualifies")


def test_subspecies_count_toward_their_species(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (6, 3), OXYADENIA: (4, 2)})
    assert leaves.leaf_class_ids == {AGRIFOLIA: 0}
    assert leaves.leaf_for(OXYADENIA) == AGRIFOLIA
    assert leaves.outcomes[AGRIFOLIA].observations == 10
    assert leaves.outcomes[OXYADENIA] == rules.TaxonOutcome(
        "below_cutoff", "counts toward species Quercus agrifolia", 4, 2)


def test_intermediate_ranks_pass_data_up_and_are_never_leaves(taxonomy):
    leaves = model(taxonomy, {LOBATAE: (50, 50), KELLOGGII: (3, 3), DUMOSA_COMPLEX: (30, 30)})
    assert leaves.leaf_class_ids == {QUERCUS: 0}
    assert leaves.outcomes[QUERCUS].observations == 83
    assert leaves.leaf_for(KELLOGGII) == leaves.leaf_for(DUMOSA) == QUERCUS
    assert leaves.outcomes[LOBATAE].reason == "subgenus is never a leaf; data passed to genus Quercus"
    assert status(leaves, DUMOSA_COMPLEX) == "below_cutoff"


def test_species_below_an_intermediate_rank_can_be_a_leaf(taxonomy):
    leaves = model(taxonomy, {KELLOGGII: (10, 5), DUMOSA: (10, 5)})
    assert sorted(leaves.leaf_class_ids) == [KELLOGGII, DUMOSA]
    assert status(leaves, LOBATAE) == status(leaves, DUMOSA_COMPLEX) == status(leaves, QUERCUS) == "inner"


@pytest.mark.parametrize("counts, is_leaf", [
    ((10, 5), True), ((10, 4), False), ((9, 5), False), ((11, 6), True)])
def test_cutoff_boundary(taxonomy, counts, is_leaf):
    leaves = model(taxonomy, {AGRIFOLIA: counts}, max_leaf_rank="species")
    assert (leaves.leaf_for(AGRIFOLIA) == AGRIFOLIA) is is_leaf
    if not is_leaf:
        assert leaves.drop_reason(AGRIFOLIA) == rules.BELOW_CUTOFF


def test_research_grade_shortfall_is_spelled_out(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (12, 2)}, max_leaf_rank="species")
    assert leaves.outcomes[AGRIFOLIA].reason == (
        "needs 3 more research-grade observations; data not used: no ancestor qualifies")


def test_max_leaf_rank(taxonomy):
    counts = {AGRIFOLIA: (6, 3), DENSIFLORUS: (6, 3)}
    assert model(taxonomy, counts, min_observations=6, min_research_grade=3, max_leaf_rank="species").leaf_class_ids == {
        AGRIFOLIA: 0, DENSIFLORUS: 1}
    species_only = model(taxonomy, counts, min_observations=12, min_research_grade=3, max_leaf_rank="species")
    assert species_only.num_classes == 0
    assert species_only.outcomes[QUERCUS].reason.startswith("genus is above max_leaf_rank species")
    assert model(taxonomy, counts, min_observations=12, min_research_grade=3).num_classes == 0
    family = model(taxonomy, counts, min_observations=12, min_research_grade=3, max_leaf_rank="family")
    assert family.leaf_class_ids == {FAGACEAE: 0}
    assert status(family, FAGACEAE) == "leaf"
    assert family.leaf_for(DENSIFLORUS) == FAGACEAE


def test_inactive_taxa_and_hybrids_are_excluded(taxonomy):
    assert taxonomy.exclusion(HYBRID) == "hybrid"
    assert taxonomy.exclusion(INACTIVE) == "inactive taxon"
    assert taxonomy.exclusion(INACTIVE_SUBSPECIES) == "inside excluded species Quercus wislizeni"
    assert taxonomy.counting_taxon(HYBRID) is None
    leaves = model(taxonomy, {HYBRID: (50, 50), INACTIVE: (50, 50), INACTIVE_SUBSPECIES: (5, 5)})
    assert leaves.num_classes == 0
    assert [status(leaves, taxon) for taxon in (HYBRID, INACTIVE, INACTIVE_SUBSPECIES)] == ["excluded"] * 3
    assert leaves.outcomes[HYBRID].observations == 50
    assert leaves.drop_reason(HYBRID) == rules.EXCLUDED_TAXON
    assert leaves.drop_reason(999999) == rules.UNKNOWN_TAXON
    assert QUERCUS not in leaves.outcomes  # excluded data never reaches the genus


def test_leaf_for_a_taxon_without_counted_observations(taxonomy):
    """A casual-only taxon (include_casual) still finds the leaf its data would reach."""
    leaves = model(taxonomy, {AGRIFOLIA: (6, 3), LOBATA: (6, 3)})
    assert leaves.leaf_for(KELLOGGII) == QUERCUS
    assert leaves.leaf_for(MELLIFERA) is None
    assert leaves.drop_reason(MELLIFERA) == rules.BELOW_CUTOFF


def test_models_pickle(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5)})
    assert pickle.loads(pickle.dumps(leaves)) == leaves


# ---------------------------------------------------------------- taxonomy validation


def test_unknown_ancestors_and_cycles_are_rejected_with_their_descendants():
    taxa = make_taxa(TREE[:5]) + [
        Taxon(600, 999, (LIFE, 999), 20.0, "genus", "Orphan", True),
        Taxon(601, 600, (LIFE, 999, 600), 10.0, "species", "Orphan child", True),
        Taxon(700, 701, (LIFE, 701), 20.0, "genus", "Loop A", True),
        Taxon(701, 700, (LIFE, 700), 20.0, "genus", "Loop B", True),
        Taxon(702, 700, (LIFE, 701, 700), 10.0, "species", "Below the loop", True),
        Taxon(800, 800, (LIFE, 800), 20.0, "genus", "Own ancestor", True),
    ]
    lines = {taxon.taxon_id: line for line, taxon in enumerate(taxa, start=2)}
    built, rejections = Taxonomy.from_taxa(taxa, lines)
    assert built.rejected == {600: "unknown_ancestor", 601: "unknown_ancestor", 700: "ancestry_cycle",
                              701: "ancestry_cycle", 702: "ancestry_cycle", 800: "ancestry_cycle"}
    assert [(r.reason, r.line) for r in rejections][:2] == [("unknown_ancestor", 7), ("unknown_ancestor", 8)]
    assert all(r.file == "taxa.csv" for r in rejections)
    assert set(built.taxa) == {LIFE, PLANTAE, FAGACEAE, QUERCUS, AGRIFOLIA}
    assert built.counting_taxon(601) is None


def test_a_repeated_taxon_id_keeps_its_first_row():
    taxa = make_taxa(TREE[:4]) + [Taxon(QUERCUS, FAGACEAE, (LIFE, PLANTAE, FAGACEAE), 20.0, "genus", "Again", True)]
    built, rejections = Taxonomy.from_taxa(taxa)
    assert built.taxa[QUERCUS].name == "Quercus"
    assert [r.reason for r in rejections] == ["duplicate_taxon"]


def test_counting_and_iconic_taxa(taxonomy):
    assert taxonomy.counting_taxon(OXYADENIA) == AGRIFOLIA
    assert taxonomy.counting_taxon(QUERCUS) == QUERCUS
    assert taxonomy.iconic_taxon(MELLIFERA) == "Insecta"
    assert taxonomy.iconic_taxon(ANIMALIA) == "Animalia"
    assert taxonomy.iconic_taxon(LIFE) is None


# ---------------------------------------------------------------- taxonomy.csv and taxa_report.csv


def test_taxonomy_csv_columns_order_and_dense_ids(taxonomy, tmp_path):
    leaves = model(taxonomy, {MELLIFERA: (10, 5), DENSIFLORUS: (10, 5), AGRIFOLIA: (6, 3), LOBATA: (6, 3)})
    rows = rules.taxonomy_rows(leaves)
    assert [row.taxon_id for row in rows] == [ANIMALIA, FAGACEAE, QUERCUS, NOTHOLITHOCARPUS, DENSIFLORUS,
                                              APIS, MELLIFERA, PLANTAE, INSECTA]
    assert {row.taxon_id: row.leaf_class_id for row in rows if row.leaf_class_id is not None} == {
        QUERCUS: 0, DENSIFLORUS: 1, MELLIFERA: 2}
    by_id = {row.taxon_id: row for row in rows}
    assert by_id[PLANTAE].parent_taxon_id is None and by_id[ANIMALIA].parent_taxon_id is None
    assert by_id[MELLIFERA].iconic_class_id == 1 and by_id[ANIMALIA].iconic_class_id == 10
    assert by_id[QUERCUS].iconic_class_id == 0
    assert all(row.spatial_class_id == row.leaf_class_id for row in rows)

    path = tmp_path / "taxonomy.csv"
    write_taxonomy(rows, str(path))
    text = path.read_bytes().decode()
    assert text.splitlines()[0] == ("parent_taxon_id,taxon_id,rank_level,leaf_class_id,iconic_class_id,"
                                    "spatial_class_id,name,rank")
    assert "\r" not in text
    assert "1,47158,50,,1,,Insecta,class\n" in text
    assert "200,201" not in text
    assert f"{FAGACEAE},{QUERCUS},20,0,0,0,Quercus,genus\n" in text
    assert list(read_taxonomy(str(path)).rows) == rows
    write_taxonomy(read_taxonomy(str(path)).rows, str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_taxa_report_rows(taxonomy, tmp_path):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5), OXYADENIA: (2, 1), LOBATA: (3, 0), HYBRID: (4, 4)})
    rows = rules.taxa_report_rows(leaves)
    assert [row["taxon_id"] for row in rows] == [FAGACEAE, QUERCUS, AGRIFOLIA, LOBATA, OXYADENIA, HYBRID,
                                                 PLANTAE, LIFE]
    by_id = {row["taxon_id"]: row for row in rows}
    assert by_id[AGRIFOLIA] == {
        "taxon_id": AGRIFOLIA, "name": "Quercus agrifolia", "rank": "species", "parent_taxon_id": QUERCUS,
        "observations": 12, "research_grade": 6, "status": "species_leaf",
        "reason": "qualifies with 12 observations, 6 research-grade"}
    assert (by_id[HYBRID]["status"], by_id[HYBRID]["reason"]) == ("excluded", "hybrid")
    path = tmp_path / "taxa_report.csv"
    rules.write_taxa_report_csv(rows, str(path))
    lines = path.read_text().splitlines()
    assert lines[0] == "taxon_id,name,rank,parent_taxon_id,observations,research_grade,status,reason"
    assert lines[-1] == "48460,Life,stateofmatter,,0,0,inner,inner node: 1 descendant leaf"


# ---------------------------------------------------------------- counting and licences


def observation(uuid, taxon_id=AGRIFOLIA, grade="research"):
    return Observation(uuid, 1, 37.0, -122.0, 10.0, taxon_id, grade, None)


def photo(photo_id, uuid, position=0, license="CC-BY"):
    return Photo(photo_id, "", uuid, "jpg", license, 500, 400, position)


def test_count_observation():
    assert rules.count_observation(observation("a"), True) == (AGRIFOLIA, True)
    assert rules.count_observation(observation("a", grade="needs_id"), True) == (AGRIFOLIA, False)
    assert rules.count_observation(observation("a", grade="casual"), True) == rules.CASUAL
    assert rules.count_observation(observation("a"), False) == rules.NO_ALLOWED_PHOTO
    counts = {}
    rules.add_counts(counts, AGRIFOLIA, True)
    rules.add_counts(counts, AGRIFOLIA, False)
    assert counts == {AGRIFOLIA: (2, 1)}


def test_observation_of_an_unknown_taxon_is_rejected(taxonomy):
    rejection = rules.observation_rejection(observation("a", taxon_id=424242), 7, taxonomy)
    assert (rejection.reason, rejection.line, rejection.file) == ("unknown_taxon", 7, "observations.csv")
    assert rules.observation_rejection(observation("a"), 7, taxonomy) is None


def test_licences():
    allowed = rules.allowed_licenses(["CC0", "CC-BY"])
    assert rules.license_drop_reason("cc-by", allowed) is None
    assert rules.license_drop_reason(" CC0 ", allowed) is None
    assert rules.license_drop_reason("CC-BY-NC", allowed) == rules.LICENSE_NOT_ALLOWED
    assert rules.license_drop_reason("", allowed) == rules.LICENSE_UNKNOWN
    assert rules.license_drop_reason("", rules.allowed_licenses(["CC0", "unknown"])) is None


# ---------------------------------------------------------------- splits and photos


def test_split_is_stable_and_follows_the_fractions():
    splits = [rules.split_for_observation(f"uuid-{i}", 0, 0.1, 0.2) for i in range(20000)]
    assert splits == [rules.split_for_observation(f"uuid-{i}", 0, 0.1, 0.2) for i in range(20000)]
    assert abs(splits.count("test") / 20000 - 0.2) < 0.01
    assert abs(splits.count("eval") / 20000 - 0.1) < 0.01
    other_seed = [rules.split_for_observation(f"uuid-{i}", 1, 0.1, 0.2) for i in range(20000)]
    assert other_seed != splits


def test_changing_the_eval_fraction_keeps_the_test_split():
    uuids = [f"uuid-{i}" for i in range(5000)]
    before = [rules.split_for_observation(u, 0, 0.05, 0.05) == "test" for u in uuids]
    after = [rules.split_for_observation(u, 0, 0.2, 0.05) == "test" for u in uuids]
    assert before == after


def test_train_takes_at_most_five_photos_by_position():
    photos = [photo(100 + i, "a", position=6 - i) for i in range(7)]
    chosen = rules.select_photos("train", "needs_id", photos, 5)
    assert [p.position for p in chosen] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("split", ["eval", "test"])
def test_eval_and_test_take_one_photo_of_research_grade_only(split):
    photos = [photo(1, "a", position=2), photo(2, "a", position=0), photo(3, "a", position=1)]
    assert [p.photo_id for p in rules.select_photos(split, "research", photos, 5)] == [2]
    assert rules.select_photos(split, "needs_id", photos, 5) == []
    assert rules.select_photos(split, "casual", photos, 5) == []


def test_caps_keep_the_lowest_keys_whatever_the_order():
    keyed = [(rules.cap_key(photo_id, 0), photo_id) for photo_id in range(50)]
    kept, dropped = rules.apply_caps(keyed, 10)
    assert dropped == 40 and len(kept) == 10
    assert rules.apply_caps(list(reversed(keyed)), 10) == (kept, 40)
    assert kept == [photo_id for _, photo_id in sorted(keyed)[:10]]
    assert rules.apply_caps(keyed[:3], 10) == ([p for _, p in sorted(keyed[:3])], 0)
    assert rules.cap_key(7, 0) == rules.cap_key(7, 0) != rules.cap_key(7, 1)


def test_leaf_caps_per_split():
    config = ExportConfig(max_train_photos_per_leaf=7, max_eval_photos_per_leaf=3, max_test_photos_per_leaf=2)
    assert [rules.leaf_cap(split, config) for split in ("train", "eval", "test")] == [7, 3, 2]


# ---------------------------------------------------------------- one observation's plan


def config(**overrides):
    values = dict(min_observations=2, min_research_grade=1, eval_fraction=0.2, test_fraction=0.2,
                  licenses=["CC-BY"])
    values.update(overrides)
    return ExportConfig(**values)


def uuid_in(split, seed=0):
    return next(f"obs-{i}" for i in range(1000) if rules.split_for_observation(f"obs-{i}", seed, 0.2, 0.2) == split)


def test_plan_keeps_an_observation_in_one_split(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5)})
    uuid = uuid_in("train")
    photos = [photo(i, uuid, position=i) for i in range(7)] + [photo(99, uuid, license="CC-BY-NC")]
    plan = rules.plan_observation(observation(uuid, taxon_id=OXYADENIA), photos, leaves, config())
    assert (plan.split, plan.leaf_taxon_id) == ("train", AGRIFOLIA)
    assert [p.photo_id for p in plan.photos] == [0, 1, 2, 3, 4]
    assert plan.dropped_photos == {rules.LICENSE_NOT_ALLOWED: 1, rules.OVER_OBSERVATION_CAP: 2}


def test_plan_drop_reasons(taxonomy):
    leaves = model(taxonomy, {AGRIFOLIA: (10, 5), LOBATA: (1, 1)})
    train, evaluation = uuid_in("train"), uuid_in("eval")

    def plan(uuid, taxon_id=AGRIFOLIA, grade="research", photos=None, **overrides):
        photos = [photo(1, uuid)] if photos is None else photos
        return rules.plan_observation(observation(uuid, taxon_id, grade), photos, leaves, config(**overrides))

    assert plan(train, grade="casual") == rules.CASUAL
    assert plan(train, grade="casual", include_casual=True).split == "train"
    assert plan(evaluation, grade="casual", include_casual=True) == "not_research_grade_in_eval"
    assert plan(evaluation, grade="needs_id") == "not_research_grade_in_eval"
    assert plan(evaluation).photos == (photo(1, evaluation),)
    assert plan(train, photos=[]) == plan(train, photos=iter([])) == rules.NO_PHOTO
    assert plan(train, photos=[photo(1, train, license="")]) == rules.NO_ALLOWED_PHOTO
    assert plan(train, taxon_id=LOBATA) == rules.INNER_NODE
    assert plan(train, taxon_id=HYBRID) == rules.EXCLUDED_TAXON
    assert plan(train, taxon_id=424242) == rules.UNKNOWN_TAXON


def test_a_later_export_never_moves_eval_or_test_observations_into_train(taxonomy):
    """The second export adds observations and upgrades some needs_id ones to research grade."""
    taxa = [AGRIFOLIA, LOBATA, DENSIFLORUS, MELLIFERA]
    first = [observation(f"first-{i}", taxa[i % 4], "research" if i % 3 else "needs_id") for i in range(400)]
    upgraded = [observation(o.uuid, o.taxon_id, "research" if i % 2 else o.quality_grade)
                for i, o in enumerate(first)]
    second = upgraded + [observation(f"second-{i}", taxa[i % 4], "research") for i in range(400)]
    splits_by_export = [_splits_of_export(taxonomy, export) for export in (first, second)]
    held_out = set().union(*(s["eval"] | s["test"] for s in splits_by_export))
    in_train = set().union(*(s["train"] for s in splits_by_export))
    assert held_out and in_train
    assert not held_out & in_train
    assert splits_by_export[0]["eval"] <= splits_by_export[1]["eval"]
    assert splits_by_export[0]["test"] <= splits_by_export[1]["test"]
    upgraded_research = {o.uuid for o, before in zip(upgraded, first)
                         if o.quality_grade == "research" and before.quality_grade == "needs_id"}
    assert upgraded_research & (splits_by_export[1]["eval"] | splits_by_export[1]["test"])


def _splits_of_export(taxonomy, observations):
    counts = {}
    for obs in observations:
        counted = rules.count_observation(obs, True)
        rules.add_counts(counts, *counted)
    leaves = model(taxonomy, counts, min_observations=20, min_research_grade=10)
    splits = {"train": set(), "eval": set(), "test": set()}
    for obs in observations:
        plan = rules.plan_observation(obs, [photo(1, obs.uuid)], leaves, config())
        if isinstance(plan, rules.ObservationPlan):
            assert obs.uuid not in set().union(*splits.values())
            splits[plan.split].add(obs.uuid)
    return splits

"""The code version and the provenance line every report's header shows."""
import re

from inatvision import provenance


def test_code_version_names_the_package_version_and_a_source_digest():
    version = provenance.code_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+\+src\.[0-9a-f]{12}", version), version


def test_code_version_changes_with_the_source(tmp_path, monkeypatch):
    before = provenance.code_version()
    source = tmp_path / "inatvision_extra"
    source.mkdir()
    (source / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(provenance, "PACKAGES", (*provenance.PACKAGES, "inatvision_extra"))
    provenance.code_version.cache_clear()
    try:
        with_extra = provenance.code_version()
        (source / "__init__.py").write_text("VALUE = 2\n")
        provenance.code_version.cache_clear()
        edited = provenance.code_version()
    finally:
        provenance.code_version.cache_clear()
    assert len({before, with_extra, edited}) == 3


def test_the_header_line_names_run_release_date_export_and_code():
    stamped = provenance.run_provenance({"created": "2026-12-07T18:00:00+00:00", "code_version": "0.1.0+src.abc"},
                                        run_id="20261207-180000-000001", export_dir="/data/export", release="3")
    line = provenance.header_line(stamped)
    assert line == ("run 20261207-180000-000001 · release 3 · created 2026-12-07T18:00:00+00:00 · "
                    "export /data/export · code 0.1.0+src.abc")


def test_the_header_line_says_when_nothing_was_pushed_or_recorded():
    assert "no release pushed" in provenance.header_line(provenance.run_provenance({}, "r1", "/e", None))
    component_only = provenance.header_line(provenance.component_provenance())
    assert component_only.startswith("created ") and "code " in component_only and "run " not in component_only
    assert provenance.header_line(None) == "provenance not recorded"

"""An export spoiled with hostile photos and rows (issue 9), for the export component and a whole run.

Truncated, zero-byte and non-image photos, a PNG named .jpg, CMYK and grayscale JPEGs, a 10,000 x 10,000 photo;
rows with extra tabs or quotes in every table, photo rows whose observation has no row, and a taxa table with
a cycle.
"""
import io
import os

from PIL import Image

ORPHAN_UUID = "no-such-observation"
UNUSABLE = ("truncated", "zero_byte", "not_an_image")  # the kinds the export rejects; it converts the others


def _jpeg(mode: str, size=(400, 300), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else None).save(buffer, format=fmt)
    return buffer.getvalue()


def _photo_files(export_dir: str) -> list[str]:
    photos = os.path.join(export_dir, "photos")
    return [os.path.join(photos, folder, name) for folder in sorted(os.listdir(photos))
            for name in os.listdir(os.path.join(photos, folder))]


def spoil(export_dir: str, stride: int = 1) -> dict[str, str]:
    """Replaces every `stride`-th photo with the next kind of hostile file (or leaves it, one turn in eight) and
    appends hostile rows to every table; returns photo path -> kind."""
    files = _photo_files(export_dir)[::stride]
    hostile = {
        "truncated": open(files[0], "rb").read()[:200], "zero_byte": b"", "not_an_image": b"hello, world",
        "png_named_jpg": _jpeg("RGBA", fmt="PNG"), "cmyk": _jpeg("CMYK"), "grayscale": _jpeg("L"),
        "huge": _jpeg("RGB", size=(10000, 10000)),
    }
    kinds = list(hostile.items()) + [("untouched", None)]
    chosen = {}
    for index, path in enumerate(files):  # every kind many times, so each meets selected photos
        kind, data = kinds[index % len(kinds)]
        if data is not None:
            open(path, "wb").write(data)
        chosen[path] = kind
    with open(os.path.join(export_dir, "observations.csv"), "a") as f:
        f.write("extra-tab-uuid\t1\t10.0\t10.0\t\t\t1\tresearch\t2020-01-01\n")  # an extra tab
        f.write('"quoted-uuid"\t1\t95.0\t10.0\t\t1\tresearch\t2020-01-01\n')  # latitude out of range
    with open(os.path.join(export_dir, "photos.csv"), "a") as f:
        f.write(f"orphan-1\t990001\t{ORPHAN_UUID}\t1\tjpg\tCC-BY\t\t\t0\n")  # no observation row at all
        f.write(f"orphan-2\t990002\t{ORPHAN_UUID}\t1\tjpg\tCC-BY\t\t\t1\n")
        f.write("of-rejected-1\t990003\tquoted-uuid\t1\tjpg\tCC-BY\t\t\t0\n")  # of rejected observation rows:
        f.write("of-rejected-2\t990004\textra-tab-uuid\t1\tjpg\tCC-BY\t\t\t0\n")  # not without a row
        f.write("extra-tab\t990005\textra-tab-uuid\t1\tjpg\tCC-BY\t\t\t0\t\n")  # an extra tab
    with open(os.path.join(export_dir, "taxa.csv"), "a") as f:
        f.write("900001\t48460/900002\t10\tspecies\tCyclus unus\ttrue\n")
        f.write("900002\t48460/900001\t10\tspecies\tCyclus duo\ttrue\n")
        f.write("900003\t48460\t10\tspecies\tTabula extra\ttrue\t\n")  # an extra tab
    return chosen

"""Feature keys of the tf.Examples, in one place for every stage."""

IMAGE = "image/encoded"  # bytes: an RGB JPEG
IMAGE_FORMAT = "image/format"  # bytes: b"jpeg"
PHOTO_ID = "photo_id"  # int64
OBSERVATION_UUID = "observation_uuid"  # bytes
TAXON_ID = "taxon_id"  # int64: the observation's own taxon
LEAF_TAXON_ID = "leaf_taxon_id"  # int64: the leaf (class) the observation counts toward
LABEL = "leaf_class_id"  # int64: dense class index from taxonomy.csv
LEAF_RANK = "leaf_rank"  # bytes: b"species", b"genus", ...
LEAF_TRAIN_PHOTOS = "leaf_train_photos"  # int64: training photos of the example's leaf
ICONIC_TAXON = "iconic_taxon"  # bytes: e.g. b"Plantae"; b"" when the leaf has none
LATITUDE = "latitude"  # float; absent when unknown
LONGITUDE = "longitude"  # float; absent when unknown
POSITIONAL_ACCURACY = "positional_accuracy"  # float metres; absent when unknown
OBSERVED_ON = "observed_on"  # bytes: YYYY-MM-DD; absent when unknown
DAY_OF_YEAR = "day_of_year"  # int64 1..366; absent when unknown
QUALITY_GRADE = "quality_grade"  # bytes: research, needs_id, casual
LICENSE = "license"  # bytes

SPLITS = ("train", "eval", "test")

ICONIC_TAXA = (
    "Plantae", "Insecta", "Aves", "Fungi", "Mammalia", "Reptilia", "Amphibia",
    "Actinopterygii", "Mollusca", "Arachnida", "Animalia", "Protozoa", "Chromista",
)

# Transformed (tf.Transform output) keys.
IMAGE_PIXELS = "image"  # float [size, size, 3]: decoded, resized, pixel levels 0..255
LOCATION_ENCODING = "location_encoding"  # float [4]: sin/cos of lng/180 and lat/90
HAS_LOCATION = "has_location"  # float 0/1: usable by the one rule (coordinates and accuracy)
HAS_COORDINATES = "has_coordinates"  # float 0/1: the coordinates alone are usable (the accuracy not weighed)
DATE_ENCODING = "date_encoding"  # float [2]: sin/cos of day of year

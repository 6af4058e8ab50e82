"""cfld.data: DeepFashion In-Shop (authors' file format) and our procedural people.

``formats`` (file names, csv/lst readers), ``images`` (image I/O and tensors), ``prepare``,
``check``, ``datasets`` (the pair data sets), ``layouts`` (DeepFashion and Market-1501 file
layouts), ``prepare_market``, ``synthetic`` (the procedural people) and ``synthetic_root``
(written as a data root).
"""

from cfld.data.check import CheckReport, check, check_root
from cfld.data.datasets import (
    DeepFashionTest,
    DeepFashionTrain,
    FidRealSet,
    Market1501Test,
    Market1501Train,
    PairItem,
)
from cfld.data.formats import (
    ANNOTATION_TEST,
    ANNOTATION_TRAIN,
    PAIRS_TEST,
    PAIRS_TRAIN,
    TEST_DIR,
    TEST_LST,
    TRAIN_DIR,
    TRAIN_LST,
    DataError,
    generated_name,
    read_annotations,
    read_pairs,
)
from cfld.data.images import load_image, open_image, to_signed, to_tensor
from cfld.data.layouts import DEEPFASHION, MARKET1501, DataLayout, detect_layout
from cfld.data.prepare import prepare
from cfld.data.prepare_market import prepare_market1501
from cfld.data.synthetic import PART_LABELS
from cfld.data.synthetic_root import make_sample_root, pair_silhouette_iou, synthesize

__all__ = [
    "ANNOTATION_TEST",
    "ANNOTATION_TRAIN",
    "PAIRS_TEST",
    "PAIRS_TRAIN",
    "PART_LABELS",
    "TEST_DIR",
    "TEST_LST",
    "TRAIN_DIR",
    "TRAIN_LST",
    "DEEPFASHION",
    "MARKET1501",
    "CheckReport",
    "DataError",
    "DataLayout",
    "DeepFashionTest",
    "DeepFashionTrain",
    "FidRealSet",
    "Market1501Test",
    "Market1501Train",
    "PairItem",
    "check",
    "check_root",
    "detect_layout",
    "generated_name",
    "load_image",
    "make_sample_root",
    "open_image",
    "pair_silhouette_iou",
    "prepare",
    "prepare_market1501",
    "read_annotations",
    "read_pairs",
    "synthesize",
    "to_signed",
    "to_tensor",
]

"""DeepFashion In-Shop in the authors' file format (fidelity §5): one import for all of it.

The parts live in :mod:`cfld.data.formats` (file names and readers), :mod:`cfld.data.images`
(image I/O), :mod:`cfld.data.prepare`, :mod:`cfld.data.check` and :mod:`cfld.data.datasets`;
this module gathers their public names, as it did before they were split.
"""

from cfld.data.check import CheckReport, check, check_root
from cfld.data.datasets import DeepFashionTest, DeepFashionTrain, FidRealSet, PairItem
from cfld.data.formats import (
    ANNOTATION_HEADER,
    ANNOTATION_TEST,
    ANNOTATION_TRAIN,
    OFFICIAL_PAIR_COUNTS,
    PAIRS_TEST,
    PAIRS_TRAIN,
    SPLIT_FILES,
    SPLITS,
    TEST_DIR,
    TEST_LST,
    TRAIN_DIR,
    TRAIN_LST,
    DataError,
    find_duplicate_pairs,
    iter_names,
    read_annotations,
    read_lst,
    read_pairs,
)
from cfld.data.images import IMAGE_EXTENSIONS, load_image, to_signed, to_tensor
from cfld.data.prepare import GENDERS, flat_name, prepare

__all__ = [
    "ANNOTATION_HEADER",
    "ANNOTATION_TEST",
    "ANNOTATION_TRAIN",
    "GENDERS",
    "IMAGE_EXTENSIONS",
    "OFFICIAL_PAIR_COUNTS",
    "PAIRS_TEST",
    "PAIRS_TRAIN",
    "SPLITS",
    "SPLIT_FILES",
    "TEST_DIR",
    "TEST_LST",
    "TRAIN_DIR",
    "TRAIN_LST",
    "CheckReport",
    "DataError",
    "DeepFashionTest",
    "DeepFashionTrain",
    "FidRealSet",
    "PairItem",
    "check",
    "check_root",
    "find_duplicate_pairs",
    "flat_name",
    "iter_names",
    "load_image",
    "prepare",
    "read_annotations",
    "read_lst",
    "read_pairs",
    "to_signed",
    "to_tensor",
]

"""The shipped XSD and examples are the OASIS files, unedited."""

from __future__ import annotations

import hashlib

from apps.early_warnings.cap.schema import SCHEMA_PATH, SCHEMA_SHA256, cap_schema
from tests.early_warnings.cap.conftest import EXAMPLES

EXAMPLE_SHA256 = {
    "Oasis_AmberAlert.xml": "76bbc53a7887c561d70a545083c956721b046fcb054e90d2b6ae278adf2b6c46",
    "Oasis_EarthquakeReport.xml": (
        "d021268c51459ae96de61ac370c2d01606c73a049513815f6d1b27973153eeaa"
    ),
    "Oasis_HomelandAlert.xml": "d1dceac71450af12b43d5a9a0cabc7c3f100201fb81ff32b166b0e6dd4c78d49",
    "Oasis_ThunderstormWarning.xml": (
        "a81f20fafb156772119975a0376e64f47c7027447a80571dbadaf6a15911f71d"
    ),
}


def test_the_shipped_schema_is_byte_for_byte_the_oasis_file() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_the_shipped_examples_are_the_oasis_files() -> None:
    found = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(EXAMPLES.glob("*.xml"))
    }
    assert found == EXAMPLE_SHA256


def test_the_schema_loads_once_and_targets_the_cap_1_2_namespace() -> None:
    assert cap_schema() is cap_schema()
    assert cap_schema().target_namespace == "urn:oasis:names:tc:emergency:cap:1.2"

"""`uuid5_text` is `str(uuid.uuid5(...))`: every id of the pipeline depends on it."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streams.core.gate import DECISION_NAMESPACE
from streams.core.ids import uuid5_text
from streams.core.strategy import IDEA_NAMESPACE
from streams.proposals import SNAPSHOT_NAMESPACE

NAMESPACES = [uuid.NAMESPACE_URL, uuid.NAMESPACE_OID, IDEA_NAMESPACE, DECISION_NAMESPACE,
              SNAPSHOT_NAMESPACE]


@given(st.sampled_from(NAMESPACES) | st.uuids(), st.text())
def test_same_text_as_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_known_value() -> None:
    # RFC 4122's namespace for URLs and a fixed name: a value independent of both versions
    assert uuid5_text(uuid.NAMESPACE_DNS, "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d"

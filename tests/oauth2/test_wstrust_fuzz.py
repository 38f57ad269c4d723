"""MEX and WS-Trust XML from a hostile federation server: bounded, no entities, linear time.

Property: any text is a WS-Trust endpoint, None or a ValueError for ``parse_mex``, and a token
or a description for ``parse_rstr``. Documents nested 200,000 elements deep or larger than the
transport's 4 MiB are refused, and the RSTR extraction, which was quadratic on repeated opening
tags (a 4 MiB answer took hours), is linear.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msal_async._oauth2 import wstrust
from msal_async.testing._federation import mex_document

from ..hostile import fuzz_settings

TAGS = ["RequestSecurityTokenResponse", "TokenType", "RequestedSecurityToken", "wsp:Policy", "a"]
XML_PIECES = st.lists(
    st.sampled_from([f"<{t}>" for t in TAGS] + [f"</{t}>" for t in TAGS])
    | st.sampled_from(["<!DOCTYPE x>", "<!ENTITY e 'x'>", "&e;", "&amp;", "<![CDATA[<]]>", " "])
    | st.text(max_size=10),
    max_size=40,
).map("".join)


def test_deep_xml_is_refused() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        wstrust.parse_mex("<a>" * 200_000)
    assert wstrust.parse_rstr("<a>" * 200_000) == (
        "WsTrust server returned no token in its response"
    )


def test_oversized_xml_is_refused() -> None:
    text = "<a>" + " " * (4 * 1024 * 1024) + "</a>"
    with pytest.raises(ValueError, match="larger than"):
        wstrust.parse_xml(text)
    assert "larger than 4 MiB" in str(wstrust.parse_rstr(text))


@pytest.mark.timeout(20)  # the quadratic scan took hours on this input
@pytest.mark.parametrize("opening", ["<RequestSecurityTokenResponse>", "<t:TokenType "])
def test_rstr_extraction_is_linear_on_repeated_opening_tags(opening: str) -> None:
    text = opening * (4 * 1024 * 1024 // len(opening) - 1)
    assert isinstance(wstrust.parse_rstr(text), str)


def test_the_real_documents_still_parse() -> None:
    assert wstrust.parse_mex(mex_document("https://adfs.example")) is not None


@fuzz_settings()
@given(XML_PIECES | st.text(max_size=200))
def test_fuzz_mex(text: str) -> None:
    try:
        endpoint = wstrust.parse_mex(text)
    except ValueError:
        return
    assert endpoint is None or endpoint.address.lower().startswith("https://")


@fuzz_settings()
@given(XML_PIECES | st.text(max_size=200))
def test_fuzz_rstr(text: str) -> None:
    result = wstrust.parse_rstr(text)
    assert isinstance(result, (str, wstrust.RstrResult))


@fuzz_settings()
@given(st.integers(0, 6), XML_PIECES)
def test_fuzz_mex_document_with_something_spliced_in(cut: int, piece: str) -> None:
    document = mex_document("https://adfs.example")
    at = len(document) * cut // 6
    try:
        wstrust.parse_mex(document[:at] + piece + document[at:])
    except ValueError as exc:
        assert "XML" in str(exc)  # noqa: PT017 (the property is about the message)

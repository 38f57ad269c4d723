"""WWW-Authenticate parsing and the claims challenge of Entra-protected resources."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from msal_async._oauth2.challenge import claims_challenge, parse_challenges

CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}'
ENCODED = base64.urlsafe_b64encode(CLAIMS.encode()).decode()


def test_a_cae_challenge_as_graph_sends_it() -> None:
    header = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
        'authorize", client_id="00000003-0000-0000-c000-000000000000", '
        f'error="insufficient_claims", claims="{ENCODED}"'
    )
    [(scheme, params)] = parse_challenges([header])
    assert scheme == "Bearer"
    assert params["error"] == "insufficient_claims"
    assert params["client_id"] == "00000003-0000-0000-c000-000000000000"
    assert json.loads(claims_challenge([header]) or "") == json.loads(CLAIMS)


def test_unpadded_claims_and_several_challenges_in_one_header() -> None:
    unpadded = ENCODED.rstrip("=")
    header = (
        f'Basic realm="x", PoP nonce="n", Bearer error="insufficient_claims", claims="{unpadded}"'
    )
    schemes = [scheme for scheme, _ in parse_challenges([header])]
    assert schemes == ["Basic", "PoP", "Bearer"]
    assert claims_challenge([header]) is not None


def test_challenges_in_separate_header_values_and_escapes() -> None:
    values = [
        'Basic realm="a \\"quoted\\" realm"',
        f'Bearer error="insufficient_claims", claims={ENCODED}',
    ]
    [(_, basic), (_, bearer)] = parse_challenges(values)
    assert basic["realm"] == 'a "quoted" realm'
    assert bearer["claims"] == ENCODED.rstrip("=")
    assert claims_challenge(values) is not None


def test_no_claims_challenge_without_insufficient_claims_or_valid_claims() -> None:
    assert claims_challenge(['Bearer authorization="https://x/t", resource="https://r"']) is None
    assert claims_challenge([f'Bearer error="invalid_token", claims="{ENCODED}"']) is None
    assert claims_challenge(['Bearer error="insufficient_claims", claims="!!!"']) is None
    not_object = base64.urlsafe_b64encode(b"[1]").decode()
    assert claims_challenge([f'Bearer error="insufficient_claims", claims="{not_object}"']) is None
    assert claims_challenge([f'Basic error="insufficient_claims", claims="{ENCODED}"']) is None
    assert claims_challenge([]) is None


@given(st.text())
def test_any_text_parses_without_raising(text: str) -> None:
    parse_challenges([text])
    claims_challenge([text])

"""MEX parsing, the RST envelope and RSTR parsing for federated username/password."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from msal_async._oauth2 import wstrust
from msal_async.testing._federation import mex_document

BASE = "https://adfs.example"


def test_mex_prefers_ws_trust_13() -> None:
    endpoint = wstrust.parse_mex(mex_document(BASE))
    assert endpoint == wstrust.WsTrustEndpoint(
        f"{BASE}/adfs/services/trust/13/usernamemixed", wstrust.ACTION_13
    )


def test_mex_without_username_endpoint_gives_none() -> None:
    text = mex_document(BASE).replace("WssUsernameToken10", "WssX509V3Token10")
    assert wstrust.parse_mex(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
        "<!ENTITY a SYSTEM 'file:///etc/passwd'>",
        "<unclosed>",
    ],
)
def test_hostile_or_broken_xml_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="XML"):
        wstrust.parse_mex(text)


def test_rst_escapes_credentials_and_names_the_13_fields() -> None:
    endpoint = wstrust.WsTrustEndpoint(f"{BASE}/13/usernamemixed", wstrust.ACTION_13)
    envelope = wstrust.build_rst(
        username="a&b@x",
        password="</wsse:Password><evil/>",
        audience="urn:federation:MicrosoftOnline",
        endpoint=endpoint,
        now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        message_id="id",
    )
    root = wstrust.parse_xml(envelope)
    ns = dict(wstrust.NS, wsse=envelope.split("xmlns:wsse='")[1].split("'")[0])
    assert root.findtext("s:Header/wsse:Security/wsse:UsernameToken/wsse:Password", None, ns) == (
        "</wsse:Password><evil/>"
    )
    assert root.findtext("s:Header/wsse:Security/wsse:UsernameToken/wsse:Username", None, ns) == (
        "a&b@x"
    )
    assert "2030-01-02T03:14:05Z" in envelope  # expires 10 minutes later
    key_type = root.findtext("s:Body/wst:RequestSecurityToken/wst:KeyType", "", ns)
    assert key_type.endswith("/Bearer")


def test_rst_2005_uses_no_proof_key() -> None:
    endpoint = wstrust.WsTrustEndpoint(f"{BASE}/2005", wstrust.ACTION_2005)
    envelope = wstrust.build_rst(
        username="u", password="p", audience="a", endpoint=endpoint, now=datetime.now(timezone.utc)
    )
    assert "NoProofKey" in envelope
    assert wstrust.NS["wst2005"] in envelope


def test_rstr_keeps_the_raw_assertion_bytes() -> None:
    assertion = "<saml:Assertion xmlns:saml='x'>\n  <inner xmlns:y='z'/></saml:Assertion>"
    body = (
        "<s:Envelope><s:Body><t:RequestSecurityTokenResponseCollection>"
        "<t:RequestSecurityTokenResponse>"
        f"<t:RequestedSecurityToken>{assertion}</t:RequestedSecurityToken>"
        "<t:TokenType>urn:oasis:names:tc:SAML:1.0:assertion</t:TokenType>"
        "</t:RequestSecurityTokenResponse></t:RequestSecurityTokenResponseCollection>"
        "</s:Body></s:Envelope>"
    )
    parsed = wstrust.parse_rstr(body)
    assert isinstance(parsed, wstrust.RstrResult)
    assert parsed.token == assertion.encode()
    assert wstrust.grant_type_for(parsed.token_type) == wstrust.SAML1_1_GRANT
    encoded = wstrust.encode_assertion(parsed.token)
    assert "=" not in encoded
    assert base64.urlsafe_b64decode(encoded + "==") == assertion.encode()


def test_rstr_fault_is_described() -> None:
    body = (
        f"<s:Envelope xmlns:s='{wstrust.NS['s']}'><s:Body><s:Fault><s:Code><s:Value>s:Sender"
        "</s:Value><s:Subcode><s:Value>a:FailedAuthentication</s:Value></s:Subcode></s:Code>"
        "<s:Reason><s:Text>ID3242</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"
    )
    assert wstrust.parse_rstr(body) == (
        "WsTrust server returned error in RSTR: a:FailedAuthentication: ID3242"
    )


def test_soap_action_guessed_from_the_address() -> None:
    assert wstrust.soap_action_for("https://x/trust/2005/usernamemixed", None) == (
        wstrust.ACTION_2005
    )
    with pytest.raises(ValueError, match="Unsupported soap action"):
        wstrust.soap_action_for("https://x/other", None)

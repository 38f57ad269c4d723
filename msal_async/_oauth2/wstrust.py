"""MEX and WS-Trust for the federated username/password flow (spec 5.7), with no I/O.

The MEX (WS-MetadataExchange) document names the federation server's WS-Trust endpoints; the
client sends a SOAP 1.2 RequestSecurityToken with a UsernameToken to the one that takes a
username and password over TLS (WS-Trust 1.3 preferred over 2005), and trades the SAML
assertion in the answer for tokens at the token endpoint (RFC 7522).

XML from the network is parsed with the standard library only after refusing any document
type declaration, so no entity (external or recursive) is ever expanded; documents larger than
the transport's 4 MiB or nested deeper than 64 elements are refused while they are read.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import _json

__all__ = [
    "ACTION_13",
    "ACTION_2005",
    "NS",
    "SAML1_1_GRANT",
    "SAML2_GRANT",
    "RstrResult",
    "WsTrustEndpoint",
    "build_rst",
    "encode_assertion",
    "escape_xml",
    "grant_type_for",
    "parse_mex",
    "parse_rstr",
    "parse_xml",
    "soap_action_for",
]

NS: dict[str, str] = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "sp": "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702",
    "sp2005": "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsa10": "http://www.w3.org/2005/08/addressing",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "wsp": "http://schemas.xmlsoap.org/ws/2004/09/policy",
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wst": "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    "wst2005": "http://schemas.xmlsoap.org/ws/2005/02/trust",
}
ACTION_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
ACTION_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue"
SAML1_1_GRANT = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"
_SOAP_HTTP = "http://schemas.xmlsoap.org/soap/http"

# RSTR token types and the grant each one is redeemed with (msal's table).
_GRANTS = {
    "urn:oasis:names:tc:SAML:1.0:assertion": SAML1_1_GRANT,
    "urn:oasis:names:tc:SAML:2.0:assertion": SAML2_GRANT,
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1": SAML1_1_GRANT,
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0": SAML2_GRANT,
}
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: The deepest element nesting accepted (MEX documents nest about 10 levels, RSTRs about 15).
MAX_XML_DEPTH = _json.MAX_DEPTH
_FEED = 64 * 1024  # characters per parser feed: the depth check runs between feeds


@dataclass(frozen=True)
class WsTrustEndpoint:
    """A WS-Trust endpoint that takes a username and password.

    Attributes:
        address: the https URL to POST the RST to.
        action: the SOAP action (:data:`ACTION_13` or :data:`ACTION_2005`).
    """

    address: str
    action: str


@dataclass(frozen=True)
class RstrResult:
    """The token of a RequestSecurityTokenResponse.

    Attributes:
        token: the raw bytes of the SAML assertion, exactly as received (a signed XML
            document must not be re-serialized).
        token_type: the ``TokenType``.
    """

    token: bytes
    token_type: str


def parse_xml(text: str) -> ET.Element:
    """Parse an XML document that must not declare a DTD or entities, within bounds.

    Args:
        text: the document.

    Returns:
        The root element.

    Raises:
        ValueError: it declares a DOCTYPE or an ENTITY, is larger than 4 MiB, nests elements
            deeper than :data:`MAX_XML_DEPTH`, or is not well-formed XML.
    """
    if len(text) > _json.MAX_NETWORK_BYTES:
        msg = f"XML larger than {_json.MAX_NETWORK_BYTES} bytes is refused"
        raise ValueError(msg)
    if _DECLARATION.search(text):
        msg = "XML with a DOCTYPE or ENTITY declaration is refused"
        raise ValueError(msg)
    # Declarations are refused above, so no entity can be defined, let alone expanded.
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    depth = 0
    try:
        for start in range(0, len(text) or 1, _FEED):
            if start + _FEED >= len(text):
                parser.feed(text[start:])
                parser.close()
            else:
                parser.feed(text[start : start + _FEED])
            for kind, *element in parser.read_events():
                depth += 1 if kind == "start" else -1
                if depth > MAX_XML_DEPTH:
                    msg = f"XML nested deeper than {MAX_XML_DEPTH} elements is refused"
                    raise ValueError(msg)
                if root is None and element and isinstance(element[0], ET.Element):
                    root = element[0]
    except ET.ParseError as exc:
        msg = f"not well-formed XML: {exc}"
        raise ValueError(msg) from None
    if root is None:  # pragma: no cover - close() raises for a document without an element
        msg = "not well-formed XML: no element"
        raise ValueError(msg)
    return root


def _policy_ids(root: ET.Element, prefix: str, supporting: str) -> set[str]:
    """Ids of policies asking for a username token over a transport binding."""
    wsu_id = f"{{{NS['wsu']}}}Id"
    found: set[str] = set()
    for policy in root.findall("wsp:Policy", NS):
        for all_ in policy.findall("wsp:ExactlyOne/wsp:All", NS):
            token = all_.find(
                f"{prefix}:{supporting}/wsp:Policy/{prefix}:UsernameToken/wsp:Policy/"
                f"{prefix}:WssUsernameToken10",
                NS,
            )
            if token is not None and all_.find(f".//{prefix}:TransportBinding", NS) is not None:
                found.add("#" + (policy.get(wsu_id) or ""))
    return found


def _bindings(root: ET.Element) -> dict[str, tuple[str, str | None]]:
    """SOAP-over-HTTP bindings: name -> (policy reference, soap action)."""
    bindings: dict[str, tuple[str, str | None]] = {}
    for binding in root.findall("wsdl:binding", NS):
        soap = binding.find("soap12:binding", NS)
        if soap is None or soap.get("transport") != _SOAP_HTTP:
            continue
        operation = binding.find("wsdl:operation/soap12:operation", NS)
        action = operation.get("soapAction") if operation is not None else None
        for reference in binding.findall("wsp:PolicyReference", NS):
            bindings[binding.get("name") or ""] = (reference.get("URI") or "", action)
    return bindings


def parse_mex(text: str) -> WsTrustEndpoint | None:
    """Find the username/password WS-Trust endpoint in a MEX document.

    Args:
        text: the MEX (WSDL) document.

    Returns:
        The WS-Trust 1.3 endpoint when there is one, else the first 2005 one; None when the
        document has none (an MSA or IWA-only federation).

    Raises:
        ValueError: the document is not well-formed or declares a DTD.
    """
    root = parse_xml(text)
    policies = _policy_ids(root, "sp", "SignedEncryptedSupportingTokens")
    policies |= _policy_ids(root, "sp2005", "SignedSupportingTokens")
    bindings = _bindings(root)
    endpoints: list[WsTrustEndpoint] = []
    for port in root.findall("wsdl:service/wsdl:port", NS):
        binding = bindings.get((port.get("binding") or "").split(":")[-1])
        if binding is None or binding[0] not in policies or binding[1] is None:
            continue
        address = port.find("wsa10:EndpointReference/wsa10:Address", NS)
        if address is not None and (address.text or "").lower().startswith("https://"):
            endpoints.append(WsTrustEndpoint((address.text or "").strip(), binding[1]))
    for endpoint in endpoints:
        if endpoint.action == ACTION_13:
            return endpoint
    return endpoints[0] if endpoints else None


def soap_action_for(address: str, action: str | None) -> str:
    """The SOAP action to use with ``address`` (guessed from the path when not given).

    Args:
        address: the WS-Trust endpoint URL.
        action: the action from MEX, or None (the user realm's active auth URL).

    Returns:
        :data:`ACTION_13` or :data:`ACTION_2005`.

    Raises:
        ValueError: an empty address or an unsupported action.
    """
    if not address:
        msg = "WsTrust endpoint address can not be empty"
        raise ValueError(msg)
    if action is None:
        if "/trust/2005/usernamemixed" in address:
            action = ACTION_2005
        elif "/trust/13/usernamemixed" in address:
            action = ACTION_13
    if action not in (ACTION_13, ACTION_2005):
        msg = (
            f"Unsupported soap action: {action}. "
            "Contact your administrator to check your ADFS's MEX settings."
        )
        raise ValueError(msg)
    return action


def escape_xml(value: str) -> str:
    """Escape text for an XML element or a quoted attribute.

    Args:
        value: the text.

    Returns:
        It with ``& " ' < >`` escaped.
    """
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _wsu_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_rst(
    *,
    username: str,
    password: str,
    audience: str,
    endpoint: WsTrustEndpoint,
    now: datetime,
    message_id: str | None = None,
) -> str:
    """Build the SOAP 1.2 RequestSecurityToken envelope (a Timestamp valid 10 minutes).

    Args:
        username: the user; XML-escaped here.
        password: the password; XML-escaped here. The envelope holds it: never log it.
        audience: the ``AppliesTo`` address (the realm's ``cloud_audience_urn``).
        endpoint: where it goes (its action picks WS-Trust 1.3 or 2005 names).
        now: the current UTC time.
        message_id: the ``MessageID`` UUID; a random one when None.

    Returns:
        The envelope text.
    """
    v13 = endpoint.action == ACTION_13
    wst = NS["wst"] if v13 else NS["wst2005"]
    key_type = (
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer"
        if v13
        else "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"
    )
    request_type = (
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
        if v13
        else "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue"
    )
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    return (
        f"<s:Envelope xmlns:s='{NS['s']}' xmlns:wsa='{NS['wsa10']}' xmlns:wsu='{NS['wsu']}'>"
        "<s:Header>"
        f"<wsa:Action s:mustUnderstand='1'>{endpoint.action}</wsa:Action>"
        f"<wsa:MessageID>urn:uuid:{message_id or uuid.uuid4()}</wsa:MessageID>"
        "<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous"
        "</wsa:Address></wsa:ReplyTo>"
        f"<wsa:To s:mustUnderstand='1'>{escape_xml(endpoint.address)}</wsa:To>"
        f"<wsse:Security s:mustUnderstand='1' xmlns:wsse='{wsse}'>"
        "<wsu:Timestamp wsu:Id='_0'>"
        f"<wsu:Created>{_wsu_time(now)}</wsu:Created>"
        f"<wsu:Expires>{_wsu_time(now + timedelta(minutes=10))}</wsu:Expires>"
        "</wsu:Timestamp>"
        "<wsse:UsernameToken wsu:Id='ADALUsernameToken'>"
        f"<wsse:Username>{escape_xml(username)}</wsse:Username>"
        f"<wsse:Password>{escape_xml(password)}</wsse:Password>"
        "</wsse:UsernameToken>"
        "</wsse:Security>"
        "</s:Header>"
        "<s:Body>"
        f"<wst:RequestSecurityToken xmlns:wst='{wst}'>"
        "<wsp:AppliesTo xmlns:wsp='http://schemas.xmlsoap.org/ws/2004/09/policy'>"
        f"<wsa:EndpointReference><wsa:Address>{escape_xml(audience)}</wsa:Address>"
        "</wsa:EndpointReference>"
        "</wsp:AppliesTo>"
        f"<wst:KeyType>{key_type}</wst:KeyType>"
        f"<wst:RequestType>{request_type}</wst:RequestType>"
        "</wst:RequestSecurityToken>"
        "</s:Body>"
        "</s:Envelope>"
    )


def _raw_contents(text: str, tag: str) -> list[str]:
    """The raw text between ``<prefix:tag ...>`` and the last ``</prefix:tag>``.

    A regular expression, not a parser: a parser would re-serialize the assertion (hoisting
    namespace declarations), which breaks its XML signature (exclusive C14N).
    """
    # Linear time on any input: find the first opening tag, then the last closing tag after
    # it (what a greedy ``<tag>(.*)</tag>`` matches), with no backtracking over the text.
    opening = re.search(rf"<(?:\w+:)?{tag}(?:\s[^<>]*)?>", text)
    if opening is None:
        return []
    rest = text[opening.end() :]
    closings = list(re.finditer(rf"</(?:\w+:)?{tag}\s*>", rest))
    return [rest[: closings[-1].start()]] if closings else []


def _fault_reason(text: str) -> str | None:
    try:
        root = parse_xml(text)
    except ValueError:
        return None
    reason = root.find("s:Body/s:Fault/s:Reason/s:Text", NS)
    code = root.find("s:Body/s:Fault/s:Code/s:Subcode/s:Value", NS)
    if reason is None and code is None:
        return None
    parts = [node.text or "" for node in (code, reason) if node is not None]
    return ": ".join(parts)


def parse_rstr(text: str) -> RstrResult | str:
    """Take the SAML assertion out of a RequestSecurityTokenResponse.

    Args:
        text: the SOAP response body.

    Returns:
        The token, or a description of the SOAP fault (or of what was wrong) when there is
        no token.
    """
    if len(text) > _json.MAX_NETWORK_BYTES:
        return "WsTrust server returned a response larger than 4 MiB"
    for rstr in _raw_contents(text, "RequestSecurityTokenResponse"):
        token_types = _raw_contents(rstr, "TokenType")
        tokens = _raw_contents(rstr, "RequestedSecurityToken")
        if token_types and tokens:
            return RstrResult(tokens[0].encode("utf-8"), token_types[0].strip())
    reason = _fault_reason(text)
    if reason:
        return f"WsTrust server returned error in RSTR: {reason}"
    return "WsTrust server returned no token in its response"


def grant_type_for(token_type: str) -> str | None:
    """The grant that redeems an RSTR token type.

    Args:
        token_type: the ``TokenType``.

    Returns:
        :data:`SAML1_1_GRANT`, :data:`SAML2_GRANT`, or None for an unknown type.
    """
    return _GRANTS.get(token_type)


def encode_assertion(token: bytes) -> str:
    """Encode a SAML assertion for the ``assertion`` field (RFC 7522 section 2.1).

    Args:
        token: the raw assertion.

    Returns:
        base64url without padding.
    """
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

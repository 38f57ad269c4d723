"""A fake AD FS federation server: a MEX document and WS-Trust 1.3/2005 username endpoints.

``FederationServer(emulator)`` is an ASGI app that answers ``/adfs/...`` itself and passes
every other request to the emulator, so one server (in-process or on a socket) plays both
Entra and the federated domain's identity provider. It issues SAML 1.1 assertions for the
emulator's federated users (``emulator.add_password_user(..., federated=True)``) and records
every request with its raw body in :attr:`FederationServer.requests`.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._http import HttpResponse, Receive, Scope, Send, plain_text, send_response
from ._signin import UserDirectory

__all__ = ["FederationServer", "SoapRequest"]

_S = "http://www.w3.org/2003/05/soap-envelope"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_NS = {
    "s": _S,
    "wsse": _WSSE,
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsp": "http://schemas.xmlsoap.org/ws/2004/09/policy",
    "wst": "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    "wst2005": "http://schemas.xmlsoap.org/ws/2005/02/trust",
}
_ACTIONS = {
    "/adfs/services/trust/13/usernamemixed": (
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue",
        "wst",
    ),
    "/adfs/services/trust/2005/usernamemixed": (
        "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue",
        "wst2005",
    ),
}
_SAML11 = "urn:oasis:names:tc:SAML:1.0:assertion"
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class SoapRequest:
    """A request the federation server received.

    Attributes:
        method: the HTTP method.
        path: the URL path.
        headers: lower-cased header names.
        body: the raw body text.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class FederationServer:
    """An AD FS stand-in in front of an ``AuthorityEmulator`` (an ASGI app).

    Args:
        emulator: the authority emulator; its federated users can sign in here.
        assertion_lifetime: seconds a SAML assertion is valid.
    """

    emulator: Any
    assertion_lifetime: int = 3600
    requests: list[SoapRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: ``/adfs/...`` here, everything else to the emulator.

        Args:
            scope: the ASGI scope.
            receive: the receive channel.
            send: the send channel.
        """
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/adfs/"):
            await self.emulator(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        request = SoapRequest(str(scope.get("method", "GET")), path, headers, body)
        with self._lock:
            self.requests.append(request)
        base_url = f"{scope.get('scheme', 'https')}://{headers.get('host', 'localhost')}"
        await send_response(send, self._handle(request, base_url))

    def _handle(self, request: SoapRequest, base_url: str) -> HttpResponse:
        if request.path == "/adfs/services/trust/mex" and request.method == "GET":
            return HttpResponse(200, mex_document(base_url).encode(), "application/soap+xml")
        if request.path in _ACTIONS and request.method == "POST":
            return self._issue(request)
        return plain_text(404, "Not Found")

    def _issue(self, request: SoapRequest) -> HttpResponse:
        action, prefix = _ACTIONS[request.path]
        if request.headers.get("soapaction") != action:
            return _fault("a:ActionNotSupported", "The SOAP action is not supported here.")
        if _DECLARATION.search(request.body):
            return _fault("a:InvalidRequest", "DTDs are not accepted.")
        try:
            root = ET.fromstring(request.body)  # noqa: S314 (declarations refused above)
        except ET.ParseError:
            return _fault("a:InvalidRequest", "The request is not well-formed XML.")
        token = root.find("s:Header/wsse:Security/wsse:UsernameToken", _NS)
        rst = root.find(f"s:Body/{prefix}:RequestSecurityToken", _NS)
        if token is None or rst is None:
            return _fault("a:InvalidRequest", "No UsernameToken or RequestSecurityToken.")
        username = token.findtext("wsse:Username", "", _NS)
        password = token.findtext("wsse:Password", "", _NS)
        audience = rst.findtext("wsp:AppliesTo/wsa:EndpointReference/wsa:Address", "", _NS)
        directory: UserDirectory = self.emulator.password_users
        user = directory.get(username)
        if user is None or not user.federated or user.password is None or user.password != password:
            return _fault(
                "a:FailedAuthentication",
                "ID3242: The security token could not be authenticated or authorized.",
            )
        now = datetime.fromtimestamp(self.emulator.clock(), tz=timezone.utc)
        expires = now + timedelta(seconds=self.assertion_lifetime)
        assertion = _saml11_assertion(user.username, audience, now, expires)
        directory.remember_assertion(assertion.encode("utf-8"), user.username, expires.timestamp())
        return HttpResponse(
            200, _rstr(assertion, prefix, now, expires).encode(), "application/soap+xml"
        )


async def _read_body(receive: Receive) -> str:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    return b"".join(chunks).decode("utf-8", "replace")


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _saml11_assertion(username: str, audience: str, now: datetime, expires: datetime) -> str:
    # Namespace declarations sit on inner elements on purpose: a client that re-serializes
    # the XML (instead of keeping the raw bytes) changes them and the grant is refused.
    subject = (
        "<saml:Subject><saml:NameIdentifier "
        "Format='urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified'>"
        f"{_escape(username)}</saml:NameIdentifier><saml:SubjectConfirmation>"
        "<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod>"
        "</saml:SubjectConfirmation></saml:Subject>"
    )
    return (
        f'<saml:Assertion MajorVersion="1" MinorVersion="1" AssertionID="_{uuid.uuid4()}" '
        f'Issuer="http://adfs.emulator/adfs/services/trust" IssueInstant="{_time(now)}" '
        f'xmlns:saml="{_SAML11}">'
        f'<saml:Conditions NotBefore="{_time(now)}" NotOnOrAfter="{_time(expires)}">'
        "<saml:AudienceRestrictionCondition>"
        f"<saml:Audience>{_escape(audience)}</saml:Audience>"
        "</saml:AudienceRestrictionCondition></saml:Conditions>"
        f"<saml:AttributeStatement>{subject}"
        '<saml:Attribute AttributeName="UPN" AttributeNamespace="http://schemas.xmlsoap.org/claims">'
        f"<saml:AttributeValue>{_escape(username)}</saml:AttributeValue></saml:Attribute>"
        "</saml:AttributeStatement>"
        '<saml:AuthenticationStatement AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password" '
        f'AuthenticationInstant="{_time(now)}">{subject}</saml:AuthenticationStatement>'
        f'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>'
        f"{secrets.token_urlsafe(32)}</ds:SignatureValue></ds:Signature>"
        "</saml:Assertion>"
    )


def _rstr(assertion: str, prefix: str, now: datetime, expires: datetime) -> str:
    trust = _NS[prefix]
    final = "RSTRC/IssueFinal" if prefix == "wst" else "RSTR/Issue"
    body = (
        "<trust:RequestSecurityTokenResponse>"
        f"<trust:Lifetime><wsu:Created xmlns:wsu='{_WSU}'>{_time(now)}</wsu:Created>"
        f"<wsu:Expires xmlns:wsu='{_WSU}'>{_time(expires)}</wsu:Expires></trust:Lifetime>"
        f"<trust:RequestedSecurityToken>{assertion}</trust:RequestedSecurityToken>"
        f"<trust:TokenType>{_SAML11}</trust:TokenType>"
        "</trust:RequestSecurityTokenResponse>"
    )
    if prefix == "wst":
        body = f"<trust:RequestSecurityTokenResponseCollection>{body}</trust:RequestSecurityTokenResponseCollection>"
    return (
        f"<s:Envelope xmlns:s='{_S}' xmlns:a='{_NS['wsa']}'>"
        f"<s:Header><a:Action s:mustUnderstand='1'>{trust}/{final}</a:Action></s:Header>"
        f"<s:Body xmlns:trust='{trust}'>{body}</s:Body></s:Envelope>"
    )


def _fault(subcode: str, reason: str) -> HttpResponse:
    text = (
        f"<s:Envelope xmlns:s='{_S}'><s:Body><s:Fault>"
        "<s:Code><s:Value>s:Sender</s:Value><s:Subcode>"
        f"<s:Value xmlns:a='{_NS['wst']}'>{subcode}</s:Value></s:Subcode></s:Code>"
        f"<s:Reason><s:Text xml:lang='en-US'>{_escape(reason)}</s:Text></s:Reason>"
        "</s:Fault></s:Body></s:Envelope>"
    )
    return HttpResponse(500, text.encode(), "application/soap+xml; charset=utf-8")


def _policy(policy_id: str, sp: str, supporting: str) -> str:
    return (
        f"<wsp:Policy wsu:Id='{policy_id}'><wsp:ExactlyOne><wsp:All>"
        f"<sp:TransportBinding xmlns:sp='{sp}'><wsp:Policy><sp:TransportToken><wsp:Policy>"
        "<sp:HttpsToken/></wsp:Policy></sp:TransportToken></wsp:Policy></sp:TransportBinding>"
        f"<sp:{supporting} xmlns:sp='{sp}'><wsp:Policy><sp:UsernameToken><wsp:Policy>"
        f"<sp:WssUsernameToken10/></wsp:Policy></sp:UsernameToken></wsp:Policy></sp:{supporting}>"
        "</wsp:All></wsp:ExactlyOne></wsp:Policy>"
    )


def _binding(name: str, policy_id: str, action: str) -> str:
    return (
        f"<wsdl:binding name='{name}' type='tns:IWSTrust'>"
        f"<wsp:PolicyReference URI='#{policy_id}'/>"
        "<soap12:binding transport='http://schemas.xmlsoap.org/soap/http'/>"
        "<wsdl:operation name='Trust13Issue'>"
        f"<soap12:operation soapAction='{action}' style='document'/></wsdl:operation>"
        "</wsdl:binding>"
    )


def _port(name: str, binding: str, address: str) -> str:
    return (
        f"<wsdl:port name='{name}' binding='tns:{binding}'>"
        f"<soap12:address location='{address}'/>"
        f"<wsa10:EndpointReference><wsa10:Address>{address}</wsa10:Address>"
        "</wsa10:EndpointReference></wsdl:port>"
    )


def mex_document(base_url: str) -> str:
    """The MEX document: WS-Trust 2005 and 1.3 username endpoints, plus a Windows one.

    Args:
        base_url: where the server is reached.

    Returns:
        The WSDL text (the 2005 port first, so a client must prefer 1.3 on purpose).
    """
    sp13 = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
    sp05 = "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"
    trust = f"{base_url}/adfs/services/trust"
    return (
        "<wsdl:definitions name='SecurityTokenService' "
        "xmlns:wsdl='http://schemas.xmlsoap.org/wsdl/' "
        "xmlns:soap12='http://schemas.xmlsoap.org/wsdl/soap12/' "
        f"xmlns:wsp='{_NS['wsp']}' xmlns:wsa10='{_NS['wsa']}' xmlns:tns='http://tempuri.org/' "
        f"xmlns:wsu='{_WSU}'>"
        + _policy("UserNameWSTrustBinding_IWSTrust2005_policy", sp05, "SignedSupportingTokens")
        + _policy(
            "UserNameWSTrustBinding_IWSTrust13_policy", sp13, "SignedEncryptedSupportingTokens"
        )
        + _binding(
            "UserNameWSTrustBinding_IWSTrust2005",
            "UserNameWSTrustBinding_IWSTrust2005_policy",
            _ACTIONS["/adfs/services/trust/2005/usernamemixed"][0],
        )
        + _binding(
            "UserNameWSTrustBinding_IWSTrust13",
            "UserNameWSTrustBinding_IWSTrust13_policy",
            _ACTIONS["/adfs/services/trust/13/usernamemixed"][0],
        )
        + "<wsdl:service name='SecurityTokenService'>"
        + _port(
            "UserNameWSTrustBinding_IWSTrust2005",
            "UserNameWSTrustBinding_IWSTrust2005",
            f"{trust}/2005/usernamemixed",
        )
        + _port("WindowsTransport", "WindowsTransportBinding", f"{trust}/2005/windowstransport")
        + _port(
            "UserNameWSTrustBinding_IWSTrust13",
            "UserNameWSTrustBinding_IWSTrust13",
            f"{trust}/13/usernamemixed",
        )
        + "</wsdl:service></wsdl:definitions>"
    )

"""An emulated Entra token authority on loopback, over TLS, for the sign-in tests (azure-identity and MSAL accept
https authorities only).

It answers what a client-credentials sign-in asks of login.microsoftonline.com: the tenant's OpenID configuration
(`/{tenant}/v2.0/.well-known/openid-configuration`, MSAL's tenant discovery) and the token endpoint
(`POST /{tenant}/oauth2/v2.0/token`, RFC 6749 4.4 with client_secret_post, as MSAL sends it). It logs every request
with its headers. The certificate is a throwaway one made here with `cryptography`: a CA, and a server certificate
for 127.0.0.1 it signs; clients trust the CA through REQUESTS_CA_BUNDLE, as an admin would for a TLS-inspecting
proxy's CA. Nothing here turns a certificate check off.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

ACCESS_TOKEN = "eyJ0eXAiOi.emulated-entra-access-token.sig"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files: a CA and a 127.0.0.1 certificate it signs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "astro-scim test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


class TokenAuthority:
    """`with TokenAuthority(tmp_path, client_id=..., client_secret=...) as authority:` serves on
    https://127.0.0.1:<port> (`authority.url`); `authority.seen` lists the requests; `authority.ca` is the CA."""

    def __init__(self, directory: Path, *, client_id: str, client_secret: str) -> None:
        self.ca, cert, key = make_tls_files(directory)
        self.seen: list[Seen] = []
        self.client_id, self.client_secret = client_id, client_secret
        authority = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The head and the body go out as two writes: with Nagle's algorithm the second waits for the client's
            # delayed ACK on a kept-alive connection (~40 ms a request, most of these tests' time).
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                authority.seen.append(Seen("GET", self.path, dict(self.headers.items())))
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    base = f"{authority.url}/{parts[0]}"
                    self._answer(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                       "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                       "issuer": f"{base}/v2.0"})
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                authority.seen.append(Seen("POST", self.path, dict(self.headers.items()), form))
                if not self.path.split("?", 1)[0].endswith("/oauth2/v2.0/token"):
                    self._answer(404, {"error": "not_found"})
                elif (form.get("grant_type") != "client_credentials" or form.get("client_id") != authority.client_id
                      or form.get("client_secret") != authority.client_secret):
                    self._answer(401, {"error": "invalid_client", "error_description": "AADSTS7000215: bad"})
                else:
                    self._answer(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                       "access_token": ACCESS_TOKEN})

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    def __enter__(self) -> TokenAuthority:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""tls_util.py - what the TLS tests share: certificates made on the spot
(python3-cryptography; no key is ever committed), client contexts, and a
server started with -Z whose readiness is probed over TLS.

Certs(dir) writes into dir:
  ca.pem / ca.key            a test CA
  server.pem / server.key    CN=localhost, IP 127.0.0.1, signed by the CA
  client.pem / client.key    CN=client-one, signed by the CA
  other-ca.pem, rogue.pem/.key   a client cert from another CA
  expired.pem / expired.key  CN=client-old, signed by the CA, expired
"""
import datetime
import os
import socket
import ssl
import time
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

from conftest import HOST, Server

_DAY = datetime.timedelta(days=1)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM,
                           serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _cert(cn, key, issuer_cert=None, issuer_key=None, ca=False, server=False,
          not_before=None, not_after=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or now - _DAY)
         .not_valid_after(not_after or now + 2 * _DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


class Certs:
    def __init__(self, d):
        self.dir = str(d)
        p = lambda n: os.path.join(self.dir, n)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = _key()
        ca = _cert("percore-test-ca", ca_key, ca=True)
        other_key = _key()
        other = _cert("other-ca", other_key, ca=True)
        pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
        _write(p("ca.pem"), pem(ca))
        _write(p("ca.key"), _pem_key(ca_key))
        _write(p("other-ca.pem"), pem(other))
        for name, cn, ik, ic, kw in [
                ("server", "localhost", ca_key, ca, {"server": True}),
                ("server2", "localhost-renewed", ca_key, ca, {"server": True}),
                ("client", "client-one", ca_key, ca, {}),
                ("rogue", "client-rogue", other_key, other, {}),
                ("expired", "client-old", ca_key, ca,
                 {"not_before": now - 10 * _DAY, "not_after": now - 2 * _DAY})]:
            k = _key()
            c = _cert(cn, k, ic, ik, **kw)
            _write(p(name + ".pem"), pem(c))
            _write(p(name + ".key"), _pem_key(k))
        self.ca = p("ca.pem")
        self.server = (p("server.pem"), p("server.key"))
        self.server2 = (p("server2.pem"), p("server2.key"))
        self.client = (p("client.pem"), p("client.key"))
        self.rogue = (p("rogue.pem"), p("rogue.key"))
        self.expired = (p("expired.pem"), p("expired.key"))

    def path(self, name):
        return os.path.join(self.dir, name)


def client_ctx(certs=None, cert=None, verify=True):
    """A client context: verifying the server against the test CA (when
    certs is given and verify), presenting `cert` (pem, key) if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and certs:
        ctx.load_verify_locations(certs.ca)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def tls_connect(port, ctx, timeout=5.0, server_hostname="localhost"):
    raw = socket.create_connection((HOST, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def request(s, data, until=b"\r\n", timeout=5.0):
    """Send data, read until `until` ends the reply (or EOF/timeout)."""
    s.settimeout(timeout)
    out = b""
    if data:
        try:
            s.sendall(data)
        except (ssl.SSLError, ConnectionError):
            return out
    deadline = time.monotonic() + timeout
    while not out.endswith(until) and time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            break
        if not chunk:
            break
        out += chunk
    return out


def stats(s, arg=""):
    cmd = ("stats %s\r\n" % arg if arg else "stats\r\n").encode()
    out = request(s, cmd, b"END\r\n")
    d = {}
    for line in out.decode().split("\r\n"):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            d[parts[1]] = parts[2]
    return d


def tls_args(certs, extra_opts=(), server=None):
    pem, key = server or certs.server
    opts = ["ssl_chain_cert=" + pem, "ssl_key=" + key, *extra_opts]
    return ["-Z", "-o", ",".join(opts)]


class TlsServer(Server):
    """A server started with -Z; ready once `version` is answered over TLS with
    the probe context (which carries a client certificate when the server
    requires one)."""

    def __init__(self, probe_ctx, **kw):
        self.probe_ctx = probe_ctx
        super().__init__(**kw)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                s = tls_connect(self.port, self.probe_ctx, timeout=1.0)
            except (OSError, ssl.SSLError):
                time.sleep(0.05)
                continue
            try:
                # Any answer line: under -Y it is CLIENT_ERROR until login.
                if request(s, b"version\r\n", timeout=2.0).endswith(b"\r\n"):
                    return True
            finally:
                s.close()
            time.sleep(0.05)
        return False

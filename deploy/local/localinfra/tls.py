"""A throwaway CA and certificates for the optional secured listeners (made with openssl).

`up --sasl` adds two listeners beside PLAINTEXT: SASL_SSL (SCRAM-SHA-512 user) and SSL with
mutual TLS (a client certificate signed by the same CA is required). Everything is made fresh
under DIR/kafka/tls and valid for two days: nothing here is a secret worth keeping. The broker
gets a PKCS#12 keystore and trusts the CA for client certificates; clients get the CA as PEM
(`KAFKA_SSL_CA_FILE`) and verify the broker's name (127.0.0.1 and localhost are in its certificate).
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .common import InfraError, run

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_USER = "mentorship"


@dataclass(frozen=True)
class SaslSetup:
    """What the broker needs for its SASL_SSL listener, and what clients need to use it."""

    port: int
    mtls_port: int
    ca_file: Path
    client_cert: Path
    client_key: Path
    keystore: Path
    keystore_password: str
    username: str
    password: str
    mechanism: str = SCRAM_MECHANISM

    def client_info(self) -> dict[str, object]:
        """The infra.json entries (and the environment a service or the CLI needs)."""
        bootstrap = f"127.0.0.1:{self.port}"
        return {
            "kafka_sasl_bootstrap": bootstrap,
            "kafka_sasl_mechanism": self.mechanism,
            "kafka_sasl_username": self.username,
            "kafka_sasl_password": self.password,
            "kafka_ssl_ca_file": str(self.ca_file),
            "kafka_sasl_env": {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": self.mechanism,
                "KAFKA_SASL_USERNAME": self.username,
                "KAFKA_SASL_PASSWORD": self.password,
                "KAFKA_SSL_CA_FILE": str(self.ca_file),
            },
            "kafka_mtls_bootstrap": f"127.0.0.1:{self.mtls_port}",
            "kafka_ssl_cert_file": str(self.client_cert),
            "kafka_ssl_key_file": str(self.client_key),
            "kafka_mtls_env": {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.mtls_port}",
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CA_FILE": str(self.ca_file),
                "KAFKA_SSL_CERT_FILE": str(self.client_cert),
                "KAFKA_SSL_KEY_FILE": str(self.client_key),
            },
        }


def _openssl() -> str:
    exe = shutil.which("openssl")
    if not exe:
        raise InfraError("openssl not found: needed for the SASL_SSL listener's throwaway CA (apt-get install openssl)")
    return exe


def make_sasl_setup(tls_dir: Path, port: int, mtls_port: int) -> SaslSetup:
    """A CA; a broker key and certificate signed by it (for 127.0.0.1 and localhost) in a keystore;
    a client key and certificate for mutual TLS."""
    ssl = _openssl()
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem = tls_dir / "ca.key", tls_dir / "ca.pem"
    key, csr, pem = tls_dir / "broker.key", tls_dir / "broker.csr", tls_dir / "broker.pem"
    ext, keystore = tls_dir / "broker.ext", tls_dir / "broker.p12"
    store_password = secrets.token_hex(16)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast to make
    run(
        [
            ssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_pem),
            "-days",
            "2",
            "-subj",
            "/CN=mentorship local throwaway CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        timeout=60,
    )
    run([ssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"], timeout=60)
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    run(
        [
            ssl,
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_pem),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(pem),
            "-days",
            "2",
            "-extfile",
            str(ext),
        ],
        timeout=60,
    )
    run(
        [
            ssl,
            "pkcs12",
            "-export",
            "-in",
            str(pem),
            "-inkey",
            str(key),
            "-certfile",
            str(ca_pem),
            "-name",
            "broker",
            "-out",
            str(keystore),
            "-passout",
            f"pass:{store_password}",
        ],
        timeout=60,
    )
    client_key, client_csr, client_pem = tls_dir / "client.key", tls_dir / "client.csr", tls_dir / "client.pem"
    client_ext = tls_dir / "client.ext"
    run(
        [ssl, "req", *ec, "-keyout", str(client_key), "-out", str(client_csr), "-subj", "/CN=mentorship-client"],
        timeout=60,
    )
    client_ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    run(
        [
            ssl,
            "x509",
            "-req",
            "-in",
            str(client_csr),
            "-CA",
            str(ca_pem),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(client_pem),
            "-days",
            "2",
            "-extfile",
            str(client_ext),
        ],
        timeout=60,
    )
    for f in (ca_key, key, csr, ext, client_csr, client_ext, tls_dir / "ca.srl"):
        f.unlink(missing_ok=True)  # the CA signs nothing else; the keystore holds the broker's key
    return SaslSetup(
        port=port,
        mtls_port=mtls_port,
        ca_file=ca_pem,
        client_cert=client_pem,
        client_key=client_key,
        keystore=keystore,
        keystore_password=store_password,
        username=SCRAM_USER,
        password=secrets.token_hex(16),
    )


def broker_properties(sasl: SaslSetup) -> dict[str, str]:
    """server.properties entries of the SASL_SSL and the mutual-TLS listeners (inter-broker traffic
    stays PLAINTEXT)."""
    mech = sasl.mechanism.lower()
    return {
        "sasl.enabled.mechanisms": sasl.mechanism,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": sasl.mechanism,
        f"listener.name.sasl_ssl.{mech}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
        "listener.name.sasl_ssl.ssl.keystore.location": str(sasl.keystore),
        "listener.name.sasl_ssl.ssl.keystore.password": sasl.keystore_password,
        "listener.name.sasl_ssl.ssl.key.password": sasl.keystore_password,
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "listener.name.ssl.ssl.keystore.type": "PKCS12",
        "listener.name.ssl.ssl.keystore.location": str(sasl.keystore),
        "listener.name.ssl.ssl.keystore.password": sasl.keystore_password,
        "listener.name.ssl.ssl.key.password": sasl.keystore_password,
        "listener.name.ssl.ssl.truststore.type": "PEM",
        "listener.name.ssl.ssl.truststore.location": str(sasl.ca_file),
        "listener.name.ssl.ssl.client.auth": "required",
    }


def scram_format_args(sasl: SaslSetup) -> list[str]:
    """`kafka-storage.sh format --add-scram ...`: the users exist from the first start (KRaft)."""
    return ["--add-scram", f"{sasl.mechanism}=[name={sasl.username},password={sasl.password}]"]

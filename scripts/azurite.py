"""Start Azurite (Microsoft's Azure Storage emulator, installed by `npm install`) on free loopback ports.

Used by the tests, the local quick start and the benchmarks. Run it alone to keep one in the
foreground: `python scripts/azurite.py` prints the connection string to use (the first line of its
output; set it as AzureWebJobsStorage) and keeps Azurite running, in memory, until Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# The emulator's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `npm install` in the repository root (needs Node.js)")


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int
    scheme: str = "http"

    def service_uri(self, service: str) -> str:
        """The account's endpoint for `service` ("blob", "queue" or "table")."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.service_uri('blob')};QueueEndpoint={self.service_uri('queue')};"
            f"TableEndpoint={self.service_uri('table')};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    timeout: float = 30.0,
    ports: tuple[int, int, int] | None = None,
    *,
    tls: tuple[str, str] | None = None,
    oauth: bool = False,
) -> Azurite:
    """An in-memory Azurite on loopback; stop() it when done (it is killed by PID).

    `tls=(cert.pem, key.pem)` serves HTTPS; `oauth=True` also accepts bearer tokens (Azurite's `basic`
    check: lifetime, issuer and audience, not the signature), which Azurite allows only over HTTPS."""
    if oauth and not tls:
        raise ValueError("Azurite accepts OAuth tokens only over HTTPS: pass tls=(cert.pem, key.pem) too")
    blob, queue, table = ports or (_free_port(), _free_port(), _free_port())
    command = [
        _binary(), "--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]  # fmt: skip
    if tls:
        command += ["--cert", tls[0], "--key", tls[1]]
    if oauth:
        command += ["--oauth", "basic"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    azurite = Azurite(process, blob, queue, table, "https" if tls else "http")
    deadline = time.monotonic() + timeout
    for port in (blob, table):
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"Azurite exited with {process.returncode}: {error.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    azurite.stop()
                    raise RuntimeError(f"Azurite did not open port {port} within {timeout:g}s") from None
                time.sleep(0.05)
    return azurite


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1].strip()
    ).parse_args(argv)
    running = start()
    # SIGTERM ends the wait below like Ctrl+C does; Azurite runs in its own session, so stop it by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(running.connection_string, flush=True)
    print(f"Azurite PID {running.process.pid}; Ctrl+C stops it.", file=sys.stderr)
    try:
        running.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


if __name__ == "__main__":
    main()

"""wss:// as the real Deribit speaks it: the session over TLS (a local TLS front to the simulator, with a
certificate the test makes and trusts through SSL_CERT_FILE), verified like any public endpoint."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import pytest

from collector.deribit.session import WsSession
from collector.sim.runner import SimThread
from collector.sim.server import SimConfig

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is needed to make a certificate")


def _certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


async def _tls_front(cert, key, target_port: int):
    """Terminate TLS and pipe the bytes to the simulator's plain port."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_r, client_w):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)


def test_the_session_streams_over_tls_and_refuses_an_untrusted_certificate(tmp_path, monkeypatch):
    cert, key = _certificate(tmp_path)
    sim = SimThread(SimConfig(seed=2, rate=200, trade_rate=0)).start()
    port = int(sim.urls["ws"].split(":")[2].split("/")[0])
    try:
        async def main(trusted: bool):
            if trusted:
                monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            else:
                monkeypatch.delenv("SSL_CERT_FILE", raising=False)
            front = await _tls_front(cert, key, port)
            tls_port = front.sockets[0].getsockname()[1]
            notes = []
            s = WsSession(f"wss://localhost:{tls_port}/ws/api/v2", on_notification=lambda c, d, t: notes.append(c),
                          backoff_initial_s=0.1, backoff_max_s=0.2)
            s.want(["deribit_price_index.btc_usd"])
            task = asyncio.create_task(s.run())
            try:
                for _ in range(100):
                    if notes:
                        break
                    await asyncio.sleep(0.05)
            finally:
                s.stop()
                await task
                front.close()
            return s, notes

        s, notes = asyncio.run(main(trusted=True))
        assert s.connects >= 1 and notes and set(notes) == {"deribit_price_index.btc_usd"}
        s, notes = asyncio.run(main(trusted=False))
        assert s.connects == 0 and not notes        # a certificate nobody vouches for: never connected
    finally:
        sim.stop()

"""Byte plumbing of attached exec streams."""

import socket
import threading

import docker

from openale.sandbox.runtime import DockerRuntime
from openale.sandbox.streams import CappedBuffer, FrameDemuxer, recv_until


def test_bytes_that_arrive_with_the_upgrade_headers_are_not_lost(tmp_path):
    # An engine stand-in that writes the upgrade response and the stream's
    # first frame in one send, as a busy dockerd does for a fast command.
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"

    def serve():
        conn, _ = server.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frame
        )
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    runtime = object.__new__(DockerRuntime)
    runtime.api = docker.APIClient(base_url=f"unix://{path}", version="1.41")
    stream = runtime._attach_exec("exec-id", tty=False)
    out, err = CappedBuffer(1024), CappedBuffer(1024)
    demux = FrameDemuxer(out, err)
    while data := recv_until(stream, None):
        demux.feed(data)
    assert out.getvalue() == b"hi\n"
    stream.close()
    server.close()


def test_capped_buffer_keeps_both_ends():
    buf = CappedBuffer(10)
    buf.write(b"0123456789abcdef")
    assert buf.truncated and buf.omitted == 6
    assert buf.getvalue().startswith(b"01234") and buf.getvalue().endswith(b"bcdef")

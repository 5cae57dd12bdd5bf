import json
import socket
import time
from pathlib import Path

import pytest

ADDR = ("127.0.0.1", 9000)
_state = {}


def wait_for_server():
    if "up" not in _state:
        _state["up"] = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                socket.create_connection(ADDR, timeout=1).close()
                _state["up"] = True
                break
            except OSError:
                time.sleep(0.2)
    assert _state["up"], "nothing listening on 127.0.0.1:9000"


class Client:
    def __init__(self):
        wait_for_server()
        self.sock = socket.create_connection(ADDR, timeout=5)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.decode("utf-8")

    def cmd(self, text: str) -> str:
        self.send(text.encode("utf-8") + b"\n")
        return self.line()

    def close(self):
        self.sock.close()


@pytest.fixture()
def c():
    client = Client()
    yield client
    client.close()


def test_ping(c):
    assert c.cmd("PING") == "PONG"


def test_set_get_with_spaces_and_unicode(c):
    assert c.cmd("SET t1:greeting hello big  world") == "OK"
    assert c.cmd("GET t1:greeting") == "VALUE hello big  world"
    assert c.cmd("SET t1:ü Grüße, 東京 🎉") == "OK"
    assert c.cmd("GET t1:ü") == "VALUE Grüße, 東京 🎉"
    assert c.cmd("SET t1:greeting replaced") == "OK"
    assert c.cmd("GET t1:greeting") == "VALUE replaced"


def test_empty_value(c):
    assert c.cmd("SET t2:empty ") == "OK"
    assert c.cmd("GET t2:empty") == "VALUE "
    assert c.cmd("KEYS t2:") == "KEYS 1"
    assert c.line() == "t2:empty"


def test_missing_key(c):
    assert c.cmd("GET t3:nope") == "NIL"
    assert c.cmd("DEL t3:nope") == "0"


def test_keys_are_case_sensitive_commands_are_not(c):
    assert c.cmd("set t4:Key upper") == "OK"
    assert c.cmd("Set t4:key lower") == "OK"
    assert c.cmd("gEt t4:Key") == "VALUE upper"
    assert c.cmd("get t4:key") == "VALUE lower"
    assert c.cmd("GET t4:KEY") == "NIL"


def test_del(c):
    c.cmd("SET t5:a 1")
    assert c.cmd("DEL t5:a") == "1"
    assert c.cmd("GET t5:a") == "NIL"
    assert c.cmd("DEL t5:a") == "0"


def test_incr(c):
    assert c.cmd("INCR t6:n") == "1"
    assert c.cmd("INCR t6:n") == "2"
    assert c.cmd("INCR t6:n 40") == "42"
    assert c.cmd("INCR t6:n -50") == "-8"
    assert c.cmd("GET t6:n") == "VALUE -8"
    assert c.cmd("INCR t6:m -3") == "-3"
    c.cmd("SET t6:s abc")
    assert c.cmd("INCR t6:s") == "ERR not an integer"
    assert c.cmd("GET t6:s") == "VALUE abc"
    assert c.cmd("INCR t6:n 2.5") == "ERR not an integer"
    assert c.cmd("INCR t6:n x") == "ERR not an integer"
    assert c.cmd("GET t6:n") == "VALUE -8"
    c.cmd("SET t6:big 99999999999999999999")
    assert c.cmd("INCR t6:big") == "100000000000000000000"


def test_keys_sorted_with_prefix(c):
    for k in ["t7:b", "t7:a", "t7:C", "t7:ä", "t7:aa", "t8:x"]:
        assert c.cmd(f"SET {k} v") == "OK"
    assert c.cmd("KEYS t7:") == "KEYS 5"
    assert [c.line() for _ in range(5)] == ["t7:C", "t7:a", "t7:aa", "t7:b", "t7:ä"]
    assert c.cmd("KEYS t7:a") == "KEYS 2"
    assert [c.line() for _ in range(2)] == ["t7:a", "t7:aa"]
    assert c.cmd("KEYS zz-none:") == "KEYS 0"
    assert c.cmd("PING") == "PONG"  # nothing extra was sent after KEYS 0


def test_keys_without_prefix(c):
    c.cmd("SET t9:only 1")
    first = c.cmd("KEYS")
    assert first.startswith("KEYS ")
    n = int(first.split()[1])
    keys = [c.line() for _ in range(n)]
    assert "t9:only" in keys and keys == sorted(keys)
    assert c.cmd("PING") == "PONG"


def test_errors(c):
    assert c.cmd("FLY me") == "ERR unknown command"
    assert c.cmd("GET") == "ERR wrong number of arguments"
    assert c.cmd("DEL a b") == "ERR wrong number of arguments"
    assert c.cmd("SET onlykey") == "ERR wrong number of arguments"
    assert c.cmd("PING") == "PONG"


def test_empty_lines_ignored_and_crlf(c):
    c.send(b"\n\r\nSET t10:k v\r\nGET t10:k\r\n")
    assert c.line() == "OK"
    assert c.line() == "VALUE v"
    assert c.cmd("PING") == "PONG"


def test_pipelining(c):
    c.send(b"SET t11:p 5\nINCR t11:p\nGET t11:p\nKEYS t11:\nDEL t11:p\nGET t11:p\n")
    assert [c.line() for _ in range(7)] == ["OK", "6", "VALUE 6", "KEYS 1", "t11:p", "1", "NIL"]


def test_split_packets(c):
    c.send(b"SE")
    time.sleep(0.05)
    c.send(b"T t12:k spl")
    time.sleep(0.05)
    c.send(b"it value\nGE")
    assert c.line() == "OK"
    c.send(b"T t12:k\n")
    assert c.line() == "VALUE split value"


def test_shared_store_and_concurrency():
    idle = Client()           # connected, sends nothing
    half = Client()
    half.send(b"GET t13")     # an unfinished request
    a, b = Client(), Client()
    try:
        assert a.cmd("SET t13:shared from-a") == "OK"
        assert b.cmd("GET t13:shared") == "VALUE from-a"
        assert b.cmd("INCR t13:ctr 7") == "7"
        assert a.cmd("INCR t13:ctr") == "8"
        half.send(b":shared\n")
        assert half.line() == "VALUE from-a"
        assert idle.cmd("GET t13:ctr") == "VALUE 8"
    finally:
        for cl in (idle, half, a, b):
            cl.close()


def test_many_parallel_clients():
    import threading

    errors = []

    def work(i):
        try:
            cl = Client()
            for _ in range(20):
                cl.cmd("INCR t14:counter")
            assert cl.cmd(f"SET t14:client{i} {i}") == "OK"
            cl.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    c = Client()
    assert c.cmd("GET t14:counter") == "VALUE 200"
    assert c.cmd("KEYS t14:client") == "KEYS 10"
    c.close()


def test_abrupt_disconnect_does_not_hurt_server():
    s = Client()
    s.send(b"SET t15:x half-a-li")
    s.sock.close()
    c = Client()
    assert c.cmd("PING") == "PONG"
    c.close()


def test_quit(c):
    assert c.cmd("QUIT") == "BYE"
    c.sock.settimeout(3)
    assert c.sock.recv(100) == b""


def test_save_snapshot(c):
    snap = Path("/app/kv-snapshot.json")
    c.cmd("SET t16:snap Grüße 1 2 3")
    c.cmd("SET t16:n 10")
    c.cmd("DEL t16:n")
    assert c.cmd("SAVE") == "OK"
    data = json.loads(snap.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert data["t16:snap"] == "Grüße 1 2 3"
    assert "t16:n" not in data
    assert all(isinstance(v, str) for v in data.values())


def test_server_script_exists():
    assert Path("/app/kvserver.py").is_file()

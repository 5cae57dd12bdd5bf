import sys
import time

import pytest

sys.path.insert(0, "/app")

from ttlcache import TTLCache  # noqa: E402


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


@pytest.fixture()
def clock():
    return Clock()


def test_basic_get_set(clock):
    c = TTLCache(3, 10, clock=clock)
    c.set("a", 1)
    c.set(("t", 2), [2])
    assert c.get("a") == 1
    assert c.get(("t", 2)) == [2]
    assert c.get("zz") is None
    assert c.get("zz", "dflt") == "dflt"
    assert len(c) == 2 and "a" in c and "zz" not in c


def test_none_value_is_a_value(clock):
    c = TTLCache(2, 10, clock=clock)
    c.set("n", None)
    assert "n" in c
    assert c.get("n", "dflt") is None
    assert c.stats["hits"] == 1 and c.stats["misses"] == 0


@pytest.mark.parametrize("args", [(0, 1), (-3, 1), (2, 0), (2, -1)])
def test_bad_construction(args):
    with pytest.raises(ValueError):
        TTLCache(*args, clock=Clock())


def test_bad_entry_ttl(clock):
    c = TTLCache(2, 5, clock=clock)
    for bad in (0, -1):
        with pytest.raises(ValueError):
            c.set("a", 1, ttl=bad)


def test_expiry_boundary(clock):
    c = TTLCache(5, 10, clock=clock)
    c.set("a", 1)
    clock.advance(9.999)
    assert c.get("a") == 1 and "a" in c and len(c) == 1
    clock.advance(0.001)  # exactly ttl: expired
    assert "a" not in c
    assert c.get("a", "gone") == "gone"
    assert len(c) == 0 and c.keys() == []
    assert c.delete("a") is False


def test_per_entry_ttl(clock):
    c = TTLCache(5, 10, clock=clock)
    c.set("short", 1, ttl=2)
    c.set("long", 2, ttl=30)
    c.set("dflt", 3)
    clock.advance(2)
    assert c.keys() == ["long", "dflt"]
    clock.advance(8)
    assert c.keys() == ["long"]
    clock.advance(19.5)
    assert c.get("long") == 2
    clock.advance(0.5)
    assert c.get("long") is None


def test_overwrite_restarts_ttl_and_recency(clock):
    c = TTLCache(3, 10, clock=clock)
    c.set("a", 1)
    c.set("b", 2)
    clock.advance(6)
    c.set("a", 11)
    assert c.keys() == ["b", "a"]
    clock.advance(6)
    assert c.get("a") == 11 and "b" not in c
    assert len(c) == 1


def test_get_does_not_extend_ttl(clock):
    c = TTLCache(3, 10, clock=clock)
    c.set("a", 1)
    clock.advance(5)
    assert c.get("a") == 1
    clock.advance(5)
    assert c.get("a") is None


def test_lru_eviction_order(clock):
    c = TTLCache(3, 100, clock=clock)
    for k in "abc":
        c.set(k, k.upper())
    assert c.get("a") == "A"  # b is now least recently used
    c.set("d", "D")
    assert c.keys() == ["c", "a", "d"]
    assert "b" not in c
    c.set("c", "C2")  # overwrite: no eviction, c becomes most recent
    assert c.keys() == ["a", "d", "c"]
    c.set("e", "E")
    assert c.keys() == ["d", "c", "e"]
    assert c.stats["evictions"] == 2


def test_contains_does_not_touch_recency(clock):
    c = TTLCache(2, 100, clock=clock)
    c.set("a", 1)
    c.set("b", 2)
    assert "a" in c
    c.set("c", 3)
    assert "a" not in c and c.keys() == ["b", "c"]


def test_expired_entries_dropped_before_lru_eviction(clock):
    c = TTLCache(3, 100, clock=clock)
    c.set("old", 1)            # LRU, long-lived
    c.set("tmp1", 2, ttl=1)
    c.set("tmp2", 3, ttl=1)
    clock.advance(1)
    assert len(c) == 1
    c.set("new1", 4)
    c.set("new2", 5)
    assert c.keys() == ["old", "new1", "new2"]
    assert c.stats["evictions"] == 0
    c.set("new3", 6)
    assert c.keys() == ["new1", "new2", "new3"]
    assert c.stats["evictions"] == 1


def test_stats(clock):
    c = TTLCache(2, 10, clock=clock)
    c.set("a", 1)
    c.get("a")
    c.get("a")
    c.get("b")
    "a" in c
    len(c)
    c.keys()
    c.delete("zz")
    clock.advance(10)
    c.get("a")  # expired: a miss
    assert c.stats == {"hits": 2, "misses": 2, "evictions": 0}
    c.set("x", 1)
    c.set("y", 1)
    c.set("z", 1)
    assert c.stats == {"hits": 2, "misses": 2, "evictions": 1}
    c.clear()
    assert len(c) == 0 and c.keys() == []
    assert c.stats == {"hits": 2, "misses": 2, "evictions": 1}


def test_delete(clock):
    c = TTLCache(3, 10, clock=clock)
    c.set("a", 1)
    c.set("b", 2, ttl=1)
    assert c.delete("a") is True
    assert c.delete("a") is False
    clock.advance(1)
    assert c.delete("b") is False
    assert len(c) == 0
    c.set("a", 3)
    assert c.get("a") == 3


def test_len_with_mixed_expiry(clock):
    c = TTLCache(10, 10, clock=clock)
    for i in range(6):
        c.set(i, i, ttl=i + 1)
    clock.advance(3)
    assert len(c) == 3
    assert c.keys() == [3, 4, 5]


def test_reads_time_only_from_clock(clock):
    c = TTLCache(2, 0.01, clock=clock)
    c.set("a", 1)
    time.sleep(0.05)  # real time passes, the fake clock does not
    assert c.get("a") == 1


def test_default_clock_is_monotonic():
    c = TTLCache(2, 0.05)
    c.set("a", 1)
    assert c.get("a") == 1
    time.sleep(0.1)
    assert c.get("a") is None


def test_many_operations_stay_bounded(clock):
    c = TTLCache(50, 5, clock=clock)
    for i in range(5000):
        c.set(i, i)
        clock.advance(0.01)
    assert len(c) == 50
    assert c.keys() == list(range(4950, 5000))
    assert c.stats["evictions"] == 4950

"""The small-object cache of downloads (`storage.cache`): bounded in bytes, least recently used
out, objects over its size limit never kept. Pure logic."""

from __future__ import annotations

from filestore.storage.cache import ObjectCache


class TestObjectCache:
    def test_a_kept_object_is_returned(self) -> None:
        cache = ObjectCache(max_bytes=100, max_object=10)
        cache.put("b", "k", b"0123456789")
        assert cache.get("b", "k") == b"0123456789"
        assert cache.get("b", "other") is None
        assert cache.get("other", "k") is None

    def test_objects_over_the_limit_are_not_kept(self) -> None:
        cache = ObjectCache(max_bytes=100, max_object=10)
        cache.put("b", "k", b"x" * 11)
        assert cache.get("b", "k") is None
        assert (len(cache), cache.size) == (0, 0)

    def test_the_least_recently_used_goes_first_and_the_bound_holds(self) -> None:
        cache = ObjectCache(max_bytes=30, max_object=10)
        for key in "abc":
            cache.put("b", key, key.encode() * 10)
        assert cache.get("b", "a") is not None  # now the most recent
        cache.put("b", "d", b"d" * 10)
        assert cache.get("b", "b") is None
        assert [cache.get("b", k) is not None for k in "acd"] == [True, True, True]
        assert cache.size == 30

    def test_putting_a_key_again_counts_it_once(self) -> None:
        cache = ObjectCache(max_bytes=30, max_object=10)
        cache.put("b", "k", b"x" * 10)
        cache.put("b", "k", b"y" * 5)
        assert (len(cache), cache.size, cache.get("b", "k")) == (1, 5, b"y" * 5)

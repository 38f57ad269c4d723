"""The Redis key layout and Lua scripts of RedisPersistence (pure: no I/O).

Every key starts with ``{namespace}:`` (the prefix client-side caching tracks) and carries its
partition as a Redis Cluster hash tag, so that all the keys of one partition live in one slot:
``{namespace}:cache:{<partition>}`` (a hash: ``v`` the version, ``d`` the document) and
``{namespace}:lock:{<partition>}:<name>`` (a fleet lock named with :func:`lock_name`). Releasing a lock publishes its key on
``{namespace}:unlocked``.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "ABSENT",
    "DAMAGED",
    "LOAD",
    "READ_ALL",
    "SAVE",
    "UNLOCK",
    "cache_key",
    "cache_pattern",
    "lock_key",
    "lock_name",
    "text",
    "unlock_channel",
]

# KEYS[1] = partition hash; ARGV[1] = known version. Returns {} when absent, {v} when unchanged,
# {v, d} when changed, -1 when the key is not a hash (damaged).
LOAD = """
local v = redis.pcall('HGET', KEYS[1], 'v')
if type(v) == 'table' then return -1 end
if not v then return {} end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGET', KEYS[1], 'd')}
"""
# KEYS[1] = partition hash; ARGV = {state read, new version, document, ttl}. The state is the
# version read, '' when absent, '*' when not a hash. Returns 1 when written, 0 when another
# worker wrote since the read.
SAVE = """
local v = redis.pcall('HGET', KEYS[1], 'v')
if type(v) == 'table' then v = '*' elseif not v then v = '' end
if v ~= ARGV[1] then return 0 end
if v == '*' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS[1] = lock; ARGV = {our token, unlock channel}. Delete only if still ours, then wake.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0
"""
#: The version of a partition that is not stored, and of a key that is not a hash.
ABSENT, DAMAGED = "absent", "damaged"
#: A known version no stored version equals: the load script then returns the document.
READ_ALL = "\x00"


def text(value: bytes | str) -> str:
    """A reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _tag(partition: str | None) -> str:
    """A partition's hash tag: itself when it can be one, else a digest of it."""
    if partition and "{" not in partition and "}" not in partition:
        return partition
    return "#" + hashlib.sha256((partition or "").encode()).hexdigest()[:32]


def cache_key(namespace: str, partition: str | None) -> str:
    """``{namespace}:cache:{<partition>}``: the hash of one partition.

    Args:
        namespace: The prefix.
        partition: The partition key (one holding a brace is replaced by a digest of it).

    Returns:
        The key.
    """
    return f"{namespace}:cache:{{{_tag(partition)}}}"


def cache_pattern(namespace: str) -> str:
    """The ``SCAN`` glob pattern of every partition's key under ``namespace``.

    Args:
        namespace: The prefix (glob characters in it match only themselves).

    Returns:
        The pattern.
    """
    literal = "".join("\\" + c if c in "*?[]\\" else c for c in f"{namespace}:cache:")
    return literal + "*"


def lock_name(name: str, partition: str | None) -> str:
    """A fleet lock's name that puts it in its partition's slot: ``{<partition>}:<name>``.

    Args:
        name: What identifies the locked work.
        partition: The partition it writes, or None (then the name alone).

    Returns:
        The lock's name.
    """
    return name if partition is None else f"{{{_tag(partition)}}}:{name}"


def lock_key(namespace: str, name: str) -> str:
    """The key of a fleet lock: ``{namespace}:lock:<name>``.

    Args:
        namespace: The prefix.
        name: The lock's name; unless it starts with a hash tag (see :func:`lock_name`), the
            whole name becomes one.

    Returns:
        The key.
    """
    return f"{namespace}:lock:{name}" if name.startswith("{") else f"{namespace}:lock:{{{name}}}"


def unlock_channel(namespace: str) -> str:
    """The channel a lock release is published on."""
    return f"{namespace}:unlocked"

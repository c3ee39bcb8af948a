#!/usr/bin/python3
"""The Redis-protocol front against redis-server itself: the same commands, sent to a real
sealcached and to Debian's redis-server 7.0, must get the same bytes back.

Run by ctest (label `resp`): redis_differential_test.py --sealcached PATH. Each case is a
stream of commands drawn from a seeded generator (the exact cache, hashes, expiries,
transactions, connection and server commands, each with valid and invalid arguments: wrong
arity, unknown options, repeated options, integers Redis does not read as integers, times
that overflow) plus a list of fixed sequences, in RESP2 and after HELLO 3 in RESP3. A
difference fails the test and prints the command, both replies and the commands before it.

What is compared is sealcache's model (server/RESP.md, "Differs from Redis so far"):
- every entry expires, a day unless told: after each write redis-server's key gets the same
  default TTL, and a TTL or PTTL is compared by its sign only (two clocks, rounding);
- the generator keeps to what both serve: database 0, CONFIG GET of `save` and `appendonly`,
  expiries within sealcache's 365 days and far enough ahead not to run out between the two
  servers' replies, no KEYS or DBSIZE inside MULTI (which see the store before the EXEC);
- orders Redis does not define are sorted: KEYS, CONFIG GET's map and HGETALL (a hash
  with a value over 64 bytes is a hash table in Redis); CLIENT ID differs.
"""
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_front_test as front  # noqa: E402  (its Server: sealcached --dev in a temp dir)

# The org's default TTL in sealcached --dev (--resp-default-ttl-ms), given to redis-server's
# keys written without one.
DEFAULT_TTL_MS = "86400000"
SEEDS = (1, 2, 3)
COMMANDS_PER_SEED = 3000


# ---- RESP on a socket ---------------------------------------------------------------------------

def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode("latin-1") if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    """The raw bytes of one reply, RESP2 or RESP3."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    kind, out = line[:1], line
    if kind in b"+-:_,#(":
        return out
    n = int(line[1:-2])
    if kind in b"$=!":
        return out if n < 0 else out + f.read(n + 2)
    if kind in b"*~>%|":
        for _ in range(max(n, 0) * (2 if kind in b"%|" else 1)):
            out += read_reply(f)
        return out
    raise ValueError("not a reply: %r" % line)


class Connection:
    def __init__(self, sock, user=None, password=None):
        self.sock = sock
        self.sock.settimeout(10)
        self.file = sock.makefile("rb")
        if user is not None:
            reply = self.call("AUTH", user, password)
            assert reply == b"+OK\r\n", reply

    def call(self, *args):
        self.sock.sendall(encode(args))
        return read_reply(self.file)

    def close(self):
        self.file.close()
        self.sock.close()


class RedisServer:
    """redis-server 7.0 without persistence, on a Unix socket in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sealcache-redis.")
        self.path = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.path, "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        # Ready once it answers: the socket's file exists from its bind, before its listen.
        deadline = time.time() + 20
        while True:
            try:
                probe = self.connect()
                try:
                    if probe.call("PING") == b"+PONG\r\n":
                        break
                finally:
                    probe.close()
            except (OSError, EOFError):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def connect(self, user=None, password=None):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return Connection(sock, user, password)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the commands -------------------------------------------------------------------------------

KEYS = ["k1", "k2", "h1", "h2", "", "k:\x00bin", "kx", "h*", "k[1]", "a\\b", "K1", "-x"]
# Redis's glob: *, ?, [...] with ranges and ^, \ escapes, and patterns cut short.
PATTERNS = ["k*", "h?", "*", "[hk]1", "nomatch", "[^h]*", "h\\*", "k\\[1]", "[a-k]?", "*[",
            "[", "\\", "a\\\\b", "?", "[k-a]1", "[!h]*", "*1", "k[^0-1]", "[h\\]]*", "K*",
            "[-]x", "[z-]x", "??*", "*?*?"]
FIELDS = ["f1", "f2", "f3", ""]
VALUES = ["v", "", "12", "-3", "x" * 100, "3.5", "\x00\xff"]
# Integers as Redis reads them (string2ll) and words it does not read as integers.
NOT_INTEGERS = ["abc", "1.5", "", " 1", "+5", "007", "-0", "99999999999999999999"]
WRITES = ("SET", "SETEX", "PSETEX", "HSET", "HMSET")


def generate(rng, in_multi):
    """One command with valid or invalid arguments."""
    now_s = int(time.time())
    # Relative TTLs drawn from a wide range: two equal ones set a moment apart compare by
    # the millisecond each server ran them in (EXPIRE ... GT), which the test cannot fix.
    seconds = lambda: str(rng.randint(100, 10**6))  # noqa: E731
    ms = lambda: str(rng.randint(100_000, 10**9))  # noqa: E731
    name = rng.choice(
        ["GET", "SET", "SET", "SET", "SETEX", "PSETEX", "MGET", "DEL", "UNLINK", "EXISTS",
         "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "TYPE", "STRLEN", "HSET",
         "HSET",
         "HMSET", "HGET", "HMGET", "HGETALL", "HDEL", "HEXISTS", "HLEN", "PING", "ECHO",
         "SELECT", "CLIENT", "CONFIG", "COMMAND", "MODULE", "MULTI", "EXEC", "DISCARD", "get",
         "Set", "NOPE"] + ([] if in_multi else ["KEYS", "DBSIZE", "KEYS", "DBSIZE", "FLUSHDB"]))
    # Inside MULTI, nothing whose reply must be normalized (EXEC's array is compared as is).
    while in_multi and name in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL",
                                "HGETALL"):
        name = rng.choice(["GET", "HGET", "EXISTS"])
    upper = name.upper()
    key = lambda: rng.choice(KEYS)  # noqa: E731
    some = lambda options, weights=None: rng.choices(options, weights)[0]  # noqa: E731
    args = [name]
    if upper in ("GET", "TTL", "PTTL", "TYPE", "HGETALL", "HLEN", "STRLEN"):
        args += [key()] * some([1, 0, 2], [8, 1, 1])
    elif upper == "SET":
        args += [key(), rng.choice(VALUES)]
        if rng.random() < 0.08:
            args = args[:rng.randint(1, 2)]
        options = []
        for _ in range(some([0, 1, 2, 3], [2, 4, 2, 1])):
            option = rng.choice(["NX", "XX", "GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "nx",
                                 "ex", "BAD"])
            options.append(option)
            if option.upper() in ("EX", "PX", "EXAT", "PXAT") and rng.random() < 0.85:
                options.append(rng.choice({
                    "EX": [seconds(), seconds(), "0", "-5", "9223372036854775",
                           "9223372036854775807"],
                    "PX": [ms(), ms(), "0", "-5", "9223372036854775807"],
                    "EXAT": [str(now_s + 1000), "1", "-1", "0"],
                    "PXAT": [str((now_s + 1000) * 1000), "1", "-1", "0"],
                }[option.upper()] + NOT_INTEGERS[:3]))
        if rng.random() < 0.7 and not any(
                o.upper() in ("EX", "PX", "EXAT", "PXAT", "KEEPTTL") for o in options):
            options += ["EX", seconds()]
        args += options
    elif upper in ("SETEX", "PSETEX"):
        ttl = [seconds(), seconds()] if upper == "SETEX" else [ms(), ms()]
        args += [key(), rng.choice(ttl + ["0", "-1", "x", "0010", "9223372036854775807"]),
                 rng.choice(VALUES)]
        if rng.random() < 0.08:
            args.pop()
    elif upper in ("MGET", "DEL", "UNLINK", "EXISTS"):
        args += [key() for _ in range(some([0, 1, 2, 3]))]
    elif upper in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        args.append(key())
        args.append(rng.choice({
            "EXPIRE": [seconds(), seconds(), "0", "-1", "9223372036854775", "-9223372036854776"],
            "PEXPIRE": [ms(), ms(), "0", "-1", "9223372036854775807"],
            "EXPIREAT": [str(now_s + 500), "1", "0", "-5"],
            "PEXPIREAT": [str((now_s + 500) * 1000), "1", "0"],
        }[upper] + rng.sample(NOT_INTEGERS, 2)))
        for _ in range(some([0, 1, 2], [3, 2, 1])):
            args.append(rng.choice(["NX", "XX", "GT", "LT", "gt", "BAD"]))
        if rng.random() < 0.05:
            args = args[:rng.randint(1, 2)]
    elif upper in ("HSET", "HMSET"):
        args.append(key())
        for _ in range(some([0, 1, 2, 3], [1, 4, 2, 1])):
            args += [rng.choice(FIELDS), rng.choice(VALUES)]
        if rng.random() < 0.08:
            args.append("odd")
    elif upper in ("HGET", "HEXISTS"):
        args += [key(), rng.choice(FIELDS)][:some([2, 1], [9, 1])]
    elif upper in ("HMGET", "HDEL"):
        args += [key()] + [rng.choice(FIELDS) for _ in range(some([0, 1, 2, 3]))]
    elif upper == "PING":
        args += ["hello"] * some([0, 1, 2])
    elif upper == "ECHO":
        args += ["hi"] * some([1, 0, 2], [8, 1, 1])
    elif upper == "SELECT":
        args += [rng.choice(["0", "x", "-1", "00"])][:some([1, 0], [9, 1])]
    elif upper == "CLIENT":
        # (CLIENT ID differs between the two; outside MULTI its reply is normalized.)
        sub = rng.choice(["SETNAME", "setname", "GETNAME", "GETNAME" if in_multi else "ID",
                          "BOGUS", None])
        if sub is not None:
            args.append(sub)
        if sub and sub.upper() == "SETNAME":
            args += [rng.choice(["n1", "bad name", "", "x\n"])][:some([1, 0, 1])]
        if sub in ("GETNAME", "ID") and rng.random() < 0.2:
            args.append("extra")
    elif upper == "CONFIG":
        sub = rng.choice(["GET", "get", "BOGUS", None])
        if sub is not None:
            args.append(sub)
            args += rng.sample(["save", "appendonly", "nosuch", "SAVE", "AppendOnly"],
                               some([0, 1, 2], [1, 3, 0 if in_multi else 2]))
    elif upper == "COMMAND":  # (the commands listed differ: only refusals are compared)
        args += rng.choice([["count", "x"], ["BOGUS"], ["INFO", "nope"]])
    elif upper == "MODULE":  # (redis-server has no search module: only refusals)
        args += rng.choice([["list", "x"], ["BOGUS"], []])
    elif upper in ("MULTI", "EXEC", "DISCARD"):
        if rng.random() < 0.1:
            args.append("x")
    elif upper == "KEYS":
        args += [rng.choice(PATTERNS)][:some([1, 0], [9, 1])]
    elif upper == "FLUSHDB":  # (refused inside MULTI by sealcache: not generated there)
        args += rng.choice([[], ["ASYNC"], ["sync"], ["x"], ["ASYNC", "x"]])
    elif upper == "NOPE":
        args += ["a", "b c"][:some([0, 1, 2])]
    return args


# ---- comparing replies --------------------------------------------------------------------------

def sorted_items(reply, width):
    """An array or map reply of bulk strings, its items (groups of `width`) sorted."""
    lines = reply.split(b"\r\n")
    items = [tuple(lines[i:i + 2 * width]) for i in range(1, len(lines) - 1, 2 * width)]
    return lines[0] + b"\r\n" + b"".join(b"\r\n".join(i) + b"\r\n" for i in sorted(items))


def normalized(reply, args):
    upper = args[0].upper()
    if upper in ("TTL", "PTTL") and reply.startswith(b":") and not reply.startswith(b":-"):
        return b":<positive>\r\n"
    if upper == "CLIENT" and len(args) == 2 and args[1].upper() == "ID":
        return b":<id>\r\n" if reply.startswith(b":") else reply
    if reply[:1] in b"*%" and b"$" in reply and not reply.startswith(b"*-1"):
        if upper == "KEYS":
            return sorted_items(reply, 1)
        if upper in ("CONFIG", "HGETALL"):
            return sorted_items(reply, 2)
    return reply


class Differential(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each server is stopped at the end also if what follows its start fails.
        cls.sealcached = front.Server()
        cls.addClassCleanup(cls.sealcached.stop)
        created = front.pairs(cls.sealcached.admin().execute_command(
            "SEALCACHE.CREATEORG", "acme", 4))
        cls.token = created["token"].decode()
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.stop)
        setup = cls.redis.connect()
        setup.call("ACL", "SETUSER", "acme", "on", ">" + cls.token, "~*", "&*", "+@all")
        # As sealcache, nothing before AUTH: the default user is off.
        setup.call("ACL", "SETUSER", "default", "off")
        setup.close()

    def connect(self, protocol):
        ours = Connection(socket.create_connection(("127.0.0.1", self.sealcached.port)),
                          "acme", self.token)
        theirs = self.redis.connect("acme", self.token)
        for c in (ours, theirs):
            c.call("FLUSHDB")
            if protocol == 3:
                c.call("HELLO", "3")
        return ours, theirs

    def run_sequence(self, protocol, commands, label, batch_size=lambda: 1):
        """Sends `commands` (a callable giving an iterator of commands, each drawn knowing
        whether a MULTI is open) to both servers, `batch_size()` commands in one write (a
        pipeline), and compares each reply; returns the differences found."""
        ours, theirs = self.connect(protocol)
        differences = []
        history = []
        in_multi = [False]

        def track(args):
            upper = args[0].upper()
            if upper == "MULTI" and len(args) == 1:
                in_multi[0] = True
            elif upper == "EXEC" or (upper == "DISCARD" and len(args) == 1):
                in_multi[0] = False

        def mirrors(args, in_multi_before):
            """What redis-server runs after `args` to give its keys sealcache's default TTL
            (PEXPIRE ... NX: only where there is none), at once, in the same pipeline."""
            upper = args[0].upper()
            if upper in WRITES and len(args) > 1 and not in_multi_before:
                return [["PEXPIRE", args[1], DEFAULT_TTL_MS, "NX"]]
            if upper == "EXEC":
                return [["PEXPIRE", key, DEFAULT_TTL_MS, "NX"] for key in KEYS]
            return []

        stream = commands(lambda: in_multi[0])
        try:
            while True:
                batch = []
                for args in stream:
                    batch.append((args, in_multi[0]))
                    track(args)
                    if len(batch) == batch_size():
                        break
                if not batch:
                    break
                ours.sock.sendall(b"".join(encode(args) for args, _ in batch))
                theirs.sock.sendall(b"".join(
                    encode(a) for args, before in batch for a in [args] + mirrors(args, before)))
                diverged = False
                for args, before in batch:
                    history.append(args)
                    mine = normalized(read_reply(ours.file), args)
                    redis = normalized(read_reply(theirs.file), args)
                    for _ in mirrors(args, before):
                        read_reply(theirs.file)
                    if mine != redis:
                        differences.append(
                            "%s, RESP%d, command %d: %r\n  sealcache: %r\n  redis:     %r\n"
                            "  after: %r" % (label, protocol, len(history) - 1, args, mine[:300],
                                             redis[:300], history[-12:-1]))
                        diverged = True
                if diverged:  # start both from the same state again
                    for c in (ours, theirs):
                        c.call("DISCARD")
                        c.call("FLUSHDB")
                    in_multi[0] = False
        finally:
            ours.close()
            theirs.close()
        return differences

    def test_generated_commands_answer_as_redis_server_does(self):
        differences = []
        for protocol in (2, 3):
            for seed in SEEDS:
                rng = random.Random(seed)

                def commands(in_multi, rng=rng):
                    for _ in range(COMMANDS_PER_SEED):
                        yield generate(rng, in_multi())
                differences += self.run_sequence(protocol, commands, "seed %d" % seed)
        self.assertEqual(differences, [], "\n".join(differences[:10]))

    def test_pipelined_commands_answer_as_redis_server_does(self):
        """The same in pipelines of 1 to 16 commands sent in one write, half of them GETs
        (consecutive GETs of a pipeline are read together: RespCommands::ExecuteGets)."""
        differences = []
        for protocol in (2, 3):
            for seed in SEEDS:
                rng = random.Random(100 + seed)

                def commands(in_multi, rng=rng):
                    for _ in range(COMMANDS_PER_SEED):
                        if rng.random() < 0.5:
                            yield [rng.choice(["GET", "get"]), rng.choice(KEYS)]
                        else:
                            yield generate(rng, in_multi())
                differences += self.run_sequence(protocol, commands, "pipelined seed %d" % seed,
                                                 batch_size=lambda rng=rng: rng.randint(1, 16))
        self.assertEqual(differences, [], "\n".join(differences[:10]))

    def test_fixed_sequences_answer_as_redis_server_does(self):
        now_s = int(time.time())
        sequences = [
            # SET's options are all read before the expiry's value, repeats allowed.
            [["SET", "a", "1", "NX", "NX", "EX", "100"], ["SET", "a", "2", "XX", "XX", "GET"],
             ["SET", "a", "3", "EX", "-5", "ex", "100"], ["SET", "a", "4", "ex", "EX", "100"],
             ["SET", "a", "5", "PX", "0", "EXAT", "1"], ["SET", "a", "6", "EX", "abc", "BAD"],
             ["SET", "a", "7", "KEEPTTL", "EX", "100"], ["SET", "a", "8", "EX", "100", "KEEPTTL"],
             ["SET", "a", "9", "EX", "9223372036854775"], ["SET", "a", "1", "PX", "1", "PX"],
             ["GET", "a"]],
            # SET ... GET of a hash: WRONGTYPE, and the hash is not written over.
            [["HSET", "h", "f", "v"], ["SET", "h", "x", "GET"], ["HGETALL", "h"],
             ["SET", "h", "x", "NX", "GET"], ["SET", "h", "x"], ["GET", "h"]],
            # A time already past: NX and XX still decide, and only then is the key removed.
            [["SET", "p", "1", "EX", "100"], ["SET", "p", "2", "NX", "EXAT", "1"], ["GET", "p"],
             ["SET", "q", "2", "XX", "PXAT", "1"], ["EXISTS", "q"],
             ["SET", "p", "3", "GET", "PXAT", "1"], ["EXISTS", "p"]],
            # EXPIRE: options before the time; times that overflow are invalid, not past.
            [["SET", "e", "1", "EX", "100"], ["EXPIRE", "e", "x", "BAD"],
             ["EXPIRE", "e", "x", "NX", "XX"], ["PEXPIRE", "e", "1.5", "GT", "LT"],
             ["PEXPIRE", "e", "9223372036854775807"], ["EXPIRE", "e", "9223372036854775"],
             ["EXPIRE", "e", "-9223372036854776"], ["EXPIRE", "e", "007"], ["EXISTS", "e"],
             ["EXPIREAT", "e", str(now_s + 500), "GT"], ["PTTL", "e"]],
            # Containers: unknown subcommands and subcommands' arity, also while queuing.
            [["CLIENT", "BOGUS"], ["CLIENT"], ["CLIENT", "SETNAME"], ["CONFIG", "GET"],
             ["CONFIG", "BOGUS", "x"], ["COMMAND", "COUNT", "x"], ["MODULE", "BOGUS"],
             ["MULTI"], ["CLIENT", "BOGUS"], ["SET", "m", "1"], ["EXEC"], ["EXISTS", "m"],
             ["MULTI"], ["CONFIG", "GET"], ["EXEC"], ["MULTI"], ["MULTI"], ["SET", "m", "1"],
             ["EXEC"], ["GET", "m"]],
            # EXEC, MULTI and DISCARD with arguments.
            [["EXEC", "x"], ["MULTI"], ["SET", "n", "1"], ["EXEC", "x"], ["EXEC"],
             ["EXISTS", "n"], ["MULTI"], ["DISCARD", "x"], ["SET", "n", "1"], ["EXEC"],
             ["MULTI"], ["MULTI", "x"], ["EXEC"], ["DISCARD", "x"], ["EXISTS", "n"]],
            # CONFIG GET answers a name as it was asked, each parameter once.
            [["CONFIG", "GET", "SAVE"], ["CONFIG", "get", "save", "SaVe"],
             ["CONFIG", "GET", "AppendOnly", "nosuch"]],
        ]
        differences = []
        for protocol in (2, 3):
            for n, sequence in enumerate(sequences):
                differences += self.run_sequence(
                    protocol, lambda in_multi, s=sequence: iter(s), "sequence %d" % n)
        self.assertEqual(differences, [], "\n".join(differences[:10]))

    def test_a_hash_write_and_the_expire_after_it_answer_as_redis_server_does(self):
        """HSET or HMSET and an EXPIRE of the same key, pipelined, run as one write
        (RespCommands::ExecuteWithExpiry); and every pair that is not quite that, run apart.
        Sent in one write, and one command a write."""
        sequence = [
            ["HSET", "h", "f", "v"], ["EXPIRE", "h", "100"],  # new
            ["HSET", "h", "f", "w", "g", "x"], ["PEXPIRE", "h", "200000"],  # changed
            ["hmset", "m", "f", "v"], ["expire", "m", "50"], ["HGETALL", "m"],
            ["HSET", "h", "f"], ["EXPIRE", "h", "100"],  # arity: the EXPIRE alone
            ["SET", "s", "1"], ["HSET", "s", "f", "v"], ["EXPIRE", "s", "100"],  # WRONGTYPE
            ["HSET", "h", "a", "1"], ["EXPIRE", "other", "100"],  # another key
            ["HSET", "h", "a", "2"], ["EXPIRE", "h", "100", "NX"],  # an option
            ["HSET", "h", "a", "3"], ["EXPIRE", "h", "50", "GT"],
            ["HSET", "h", "a", "4"], ["EXPIRE", "h", "abc"],  # not an integer
            ["HSET", "h", "a", "5"], ["EXPIRE", "h", "9223372036854775"],  # overflows
            ["HSET", "h", "a", "6"], ["EXPIREAT", "h", "1"],  # absolute, past
            ["EXISTS", "h"],
            ["HSET", "h", "a", "7"], ["EXPIRE", "h", "0"],  # now: removed
            ["EXISTS", "h"],
            ["HSET", "h", "a", "8"], ["PEXPIRE", "h", "-5"],
            ["HGETALL", "h"],
            ["HSET", "h", "a", "9"], ["HSET", "h", "b", "9"], ["EXPIRE", "h", "100"],
            ["HGETALL", "h"], ["TTL", "h"], ["TTL", "m"], ["TTL", "s"],
            ["MULTI"], ["HSET", "t", "f", "v"], ["EXPIRE", "t", "100"], ["EXEC"], ["TTL", "t"],
            # After GETs (answered together), and GETs after a hash write alone.
            ["GET", "s"], ["GET", "m"], ["HSET", "g", "f", "v"], ["EXPIRE", "g", "100"],
            ["GET", "s"], ["HSET", "g", "f", "w"], ["GET", "s"], ["GET", "g"], ["HGETALL", "g"],
        ]
        differences = []
        for protocol in (2, 3):
            for size in (len(sequence), 1):
                differences += self.run_sequence(
                    protocol, lambda in_multi: iter(sequence), "batches of %d" % size,
                    batch_size=lambda size=size: size)
        self.assertEqual(differences, [], "\n".join(differences[:10]))

    def test_requests_are_parsed_as_redis_server_parses_them(self):
        """Raw requests, inline and multibulk, well and badly formed, on a fresh connection
        each: everything the server answers until an ECHO sent after them comes back, or
        until it closes the connection (a protocol error)."""
        sentinel = encode(["ECHO", "sentinel"])
        cases = [
            b"PING\r\n", b"set a b\r\nget a\r\n", b'SET "a b" "c\\x41d"\r\nGET "a b"\r\n',
            b'SET "a b\r\n', b"SET 'a' 'b'x\r\n", b"ECHO 'it''s'\r\n", b'ECHO "a"b\r\n',
            b'ECHO "\\t\\n\\xzz"\r\n', b"\r\n\r\nPING\r\n", b"   \r\nPING\r\n",
            b"PING a b c\r\n", b"*-1\r\nPING\r\n", b"*0\r\nPING\r\n", b"*1\r\n$-1\r\n",
            b"*1\r\n$x\r\n", b"*x\r\n", b"*2147483648\r\n", b"*1\r\nPING\r\n",
            b"*1\r\n$4\r\nPINGxx", b"$4\r\nPING\r\n", b"*1\r\n:1\r\n", b"*1\r\n$04\r\nPING\r\n",
            b"*01\r\n$4\r\nPING\r\n", b"*1\r\n$+4\r\nPING\r\n", b"*1 \r\n$4\r\nPING\r\n",
            b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\nb\r\nGET k\r\n",
            b"HELLO x\r\n", b"HELLO 3 AUTH acme wrong\r\n", b"HELLO 2 SETNAME\r\n",
            b"HELLO 2 BOGUS\r\n", b"AUTH a b c\r\n", b"AUTH\r\n",
        ]

        def answers(connection, request):
            connection.sock.sendall(request + sentinel)
            out = b""
            while not out.endswith(b"$8\r\nsentinel\r\n"):
                chunk = connection.sock.recv(65536)
                if not chunk:
                    return out + b"<closed>"
                out += chunk
            return out

        differences = []
        for request in cases:
            ours, theirs = self.connect(2)
            try:
                mine, redis = answers(ours, request), answers(theirs, request)
            finally:
                ours.close()
                theirs.close()
            if mine != redis:
                differences.append("%r\n  sealcache: %r\n  redis:     %r" % (request, mine, redis))
        self.assertEqual(differences, [], "\n".join(differences))

    def test_a_full_scan_finds_what_redis_server_finds(self):
        """SCAN's cursors differ (sealcache's are digests), so each iteration runs to the end
        and the keys it found are compared as sets, with MATCH, COUNT and TYPE; and its
        refusals byte for byte."""
        rng = random.Random(11)
        ours, theirs = self.connect(2)
        differences = []
        try:
            for i in range(300):
                key = rng.choice(["user:", "doc:", "h*", "k[", ""]) + str(i)
                write = (["SET", key, "v%d" % i, "EX", "10000"] if i % 3 else
                         ["HSET", key, "f", str(i)])
                for c in (ours, theirs):
                    c.call(*write)
            for options in (["COUNT", "7"], ["MATCH", "user:*"], ["MATCH", "h\\**", "COUNT", "3"],
                            ["TYPE", "hash"], ["TYPE", "string", "MATCH", "*1*"],
                            ["MATCH", "k[[]1?", "COUNT", "1000"], ["TYPE", "list"], []):
                found = []
                for c in (ours, theirs):
                    keys, cursor, calls = set(), b"0", 0
                    while True:
                        reply = c.call("SCAN", cursor, *options)
                        parts = reply.split(b"\r\n")
                        cursor = parts[2]
                        keys.update(parts[5::2])
                        calls += 1
                        if cursor == b"0" or calls > 10000:
                            break
                    found.append(keys)
                if not options:
                    self.assertEqual(len(found[0]), 300)  # every key, once each
                if found[0] != found[1]:
                    differences.append("SCAN %r: only sealcache %r, only redis %r" % (
                        options, sorted(found[0] - found[1])[:10],
                        sorted(found[1] - found[0])[:10]))
            for refused in (["SCAN", "x"], ["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT"],
                            ["SCAN", "0", "MATCH"], ["SCAN", "0", "BOGUS", "1"],
                            ["SCAN", "0", "COUNT", "x"], ["SCAN", "18446744073709551616"],
                            ["SCAN", "+0", "COUNT", "1000", "MATCH", "no"],
                            ["SCAN", "", "COUNT", "1000", "MATCH", "no"], ["SCAN", " 0"],
                            ["SCAN", "+"],
                            ["SCAN", "0x1"], ["SCAN", "0 "]):
                mine, redis = ours.call(*refused), theirs.call(*refused)
                if mine != redis:
                    differences.append("%r\n  sealcache: %r\n  redis:     %r" % (refused, mine,
                                                                                redis))
        finally:
            ours.close()
            theirs.close()
        self.assertEqual(differences, [], "\n".join(differences))

    def test_hello_as_redis_server(self):
        """HELLO's options in order, each AUTH and SETNAME taking effect as it is read (a
        refusal leaves what came before it done), a bad name refused. The replies compared
        without the version, id and modules, which differ by design."""
        token = self.token
        sequences = [
            [["HELLO", "3", "AUTH", "acme", token, "BOGUS"], ["GET", "k"]],
            [["HELLO", "3", "AUTH", "acme", token, "SETNAME", "bad name"], ["GET", "k"]],
            [["HELLO", "3", "AUTH", "acme", token, "SETNAME", "n1"], ["CLIENT", "GETNAME"]],
            [["HELLO", "2", "SETNAME", "a", "AUTH", "acme", token, "SETNAME", "b"],
             ["CLIENT", "GETNAME"]],
            [["HELLO", "3", "AUTH", "acme", "wrong", "SETNAME", "n"], ["CLIENT", "GETNAME"]],
            [["HELLO", "3", "AUTH", "acme", "wrong", "AUTH", "acme", token], ["GET", "k"]],
            [["AUTH", "acme", token], ["HELLO", "3", "SETNAME", "x y"], ["CLIENT", "GETNAME"],
             ["HELLO", "-1"], ["HELLO", "x"], ["HELLO", "2", "AUTH", "acme"], ["HELLO"],
             ["HELLO", "3", "3"]],
        ]

        def without_versions(reply):
            reply = re.sub(rb"\$5\r\n7\.2\.0\r\n|\$\d+\r\n7\.0\.\d+\r\n", b"<version>", reply)
            reply = re.sub(rb"id\r\n:\d+\r\n", b"id<id>", reply)
            return re.sub(rb"modules\r\n\*\d+\r\n.*", b"modules<modules>", reply, flags=re.S)

        differences = []
        for sequence in sequences:
            differences += self.unauthenticated_differences(sequence, without_versions)
        self.assertEqual(differences, [], "\n".join(differences))

    def test_before_and_after_authentication_as_redis_server(self):
        """A connection that has not authenticated, and one that RESET de-authenticates:
        NOAUTH, and a refused EXEC discards the transaction (EXECABORT)."""
        sequence = [
            ["GET", "k"], ["MULTI"], ["EXEC"], ["EXEC", "x"], ["DISCARD"], ["SET", "k", "v"],
            ["AUTH", "acme", "wrong"], ["AUTH", "nobody", self.token], ["PING"],
            ["AUTH", "acme", self.token], ["MULTI"], ["SET", "k", "v"], ["RESET"], ["EXEC"],
            ["GET", "k"], ["AUTH", "acme", self.token], ["MULTI"], ["GET", "k"], ["EXEC"],
            ["QUIT"]]
        differences = self.unauthenticated_differences(sequence)
        self.assertEqual(differences, [], "\n".join(differences))

    def unauthenticated_differences(self, sequence, normalize=lambda reply: reply):
        """Sends `sequence` on a new connection to each server, before any AUTH; the
        replies that differ once normalized."""
        ours = Connection(socket.create_connection(("127.0.0.1", self.sealcached.port)))
        theirs = self.redis.connect()
        differences = []
        try:
            for args in sequence:
                mine, redis = normalize(ours.call(*args)), normalize(theirs.call(*args))
                if mine != redis:
                    differences.append("%r in %r\n  sealcache: %r\n  redis:     %r" % (
                        args, sequence, mine, redis))
        finally:
            ours.close()
            theirs.close()
        return differences


if __name__ == "__main__":
    front.main()

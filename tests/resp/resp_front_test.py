#!/usr/bin/python3
"""The Redis-protocol front of a real sealcached, spoken to by real clients: redis-py 4.3.4
(Debian's python3-redis, RESP2) and redis-cli 7.0 (RESP2 and, with -3, RESP3), plus raw
sockets where a byte-exact reply or a protocol error is the point.

Run by ctest (label `resp`): resp_front_test.py --sealcached PATH. Each test class starts
its own server in a temporary directory and stops it at the end.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

SEALCACHED = None


class Server:
    """sealcached --dev in a temporary directory, both ports picked by the kernel."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sealcache-resp.")
        self.start()

    def start(self):
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [SEALCACHED, "--dev", "--data", os.path.join(self.dir, "data"), "--port", "0",
             "--resp-port", "0", "--hello-timeout-ms", "3000"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.log_path) as f:
                text = f.read()
            m = re.search(r"Redis protocol on [0-9.]+:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("sealcached exited: " + text)
            time.sleep(0.05)
        else:
            raise RuntimeError("sealcached did not start: " + open(self.log_path).read())
        with open(os.path.join(self.dir, "data", "admin.token")) as f:
            self.admin_token = f.read().strip()

    def admin(self):
        return redis.Redis(port=self.port, username="admin", password=self.admin_token)

    def shutdown(self):
        """A clean stop (memtables flushed to SSTs); the data directory stays."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()

    def restart(self):
        self.shutdown()
        self.start()

    def kill_and_restart(self):
        """SIGKILL (no flush, no snapshot) and a start on the same data directory."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()
        self.start()

    def stop(self):
        self.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def files_containing(self, needle):
        found = []
        for root, _, files in os.walk(os.path.join(self.dir, "data")):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(os.path.relpath(path, self.dir))
        return found


def pairs(reply):
    """A RESP2 map (flat array of key, value, ...) as a dict of str keys."""
    it = iter(reply)
    return {k.decode(): v for k, v in zip(it, it)}


def raw(port, data, until=None):
    """Sends bytes on a fresh connection; returns what comes back until it ends with `until`
    (or, without it, until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while until is None or not out.endswith(until):
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


class RespFront(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        created = pairs(cls.server.admin().execute_command("SEALCACHE.CREATEORG", "acme", 4))
        cls.acme_token = created["token"].decode()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def org(self, token=None, user="acme"):
        return redis.Redis(port=self.server.port, username=user, password=token or self.acme_token)

    def test_data_commands_before_auth_answer_noauth_as_redis_does(self):
        r = redis.Redis(port=self.server.port)
        with self.assertRaises(redis.exceptions.AuthenticationError) as e:
            r.ping()
        self.assertEqual(str(e.exception), "Authentication required.")
        self.assertEqual(raw(self.server.port, b"PING\r\n", until=b"\r\n"),
                         b"-NOAUTH Authentication required.\r\n")

    def test_auth_binds_to_the_tokens_org_and_refuses_another_user_name(self):
        self.assertTrue(self.org().ping())
        self.assertTrue(redis.Redis(port=self.server.port, password=self.acme_token).ping())
        url = "redis://acme:%s@127.0.0.1:%d/0" % (self.acme_token, self.server.port)
        self.assertTrue(redis.Redis.from_url(url).ping())
        # redis-py 4.3.4 raises WRONGPASS, Redis's answer to a bad pair, as a ResponseError.
        wrongpass = "WRONGPASS invalid username-password pair or user is disabled."
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.org(user="globex").ping()
        self.assertEqual(str(e.exception), wrongpass)
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.org(token="sc_" + "0" * 64).ping()
        self.assertEqual(str(e.exception), wrongpass)

    def test_admin_commands_need_the_admin_token(self):
        with self.assertRaises(redis.exceptions.NoPermissionError) as e:
            self.org().execute_command("SEALCACHE.LISTORGS")
        self.assertEqual(str(e.exception),
                         "this user has no permissions to run the 'sealcache.listorgs' command")
        orgs = [pairs(o) for o in self.server.admin().execute_command("SEALCACHE.LISTORGS")]
        self.assertIn(b"acme", [o["org"] for o in orgs])

    def test_every_admin_operation_of_the_native_protocol(self):
        admin = self.server.admin()
        created = pairs(admin.execute_command("SEALCACHE.CREATEORG", "scratch", 8, "flat"))
        self.assertEqual(created["org"], b"scratch")
        self.assertEqual(admin.execute_command("SEALCACHE.ROTATEKEY", "scratch"), 2)
        versions = [pairs(v) for v in admin.execute_command("SEALCACHE.KEYSTATUS", "scratch")]
        self.assertEqual([(v["version"], v["state"]) for v in versions],
                         [(1, b"RETIRING"), (2, b"ACTIVE")])
        issued = pairs(admin.execute_command("SEALCACHE.ISSUETOKEN", "scratch"))
        self.assertTrue(issued["token"].startswith(b"sc_"))
        self.assertEqual(
            admin.execute_command("SEALCACHE.REVOKETOKEN", "scratch", issued["token_id"]), 1)
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            admin.execute_command("SEALCACHE.ROTATEKEY", "../scratch")
        self.assertIn("org", str(e.exception))
        self.assertEqual(admin.execute_command("SEALCACHE.DROPORG", "scratch"), b"OK")
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            admin.execute_command("SEALCACHE.DROPORG", "scratch")
        self.assertIn("unknown org scratch", str(e.exception))

    def test_the_master_key_rotates_from_a_redis_client(self):
        admin = self.server.admin()
        key = os.path.join(self.server.dir, "next-master.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(key, 0o600)
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            admin.execute_command("SEALCACHE.ROTATEMASTERKEY", "file:" + key + ".missing")
        self.assertIn(".missing", str(e.exception))
        fingerprint = admin.execute_command("SEALCACHE.ROTATEMASTERKEY", "file:" + key)
        self.assertEqual(len(fingerprint), 32)
        self.assertEqual(self.org().ping(), True)  # still serving
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.org().execute_command("SEALCACHE.ROTATEMASTERKEY", "file:" + key)
        self.assertIn("permissions", str(e.exception))
        # Back to the --dev key the server restarts with.
        dev_key = os.path.join(self.server.dir, "data", "master.key")
        admin.execute_command("SEALCACHE.ROTATEMASTERKEY", "file:" + dev_key)
        self.server.restart()
        self.assertEqual(self.org().ping(), True)

    def test_a_revocation_reaches_an_open_connection_at_its_next_command(self):
        admin = self.server.admin()
        issued = pairs(admin.execute_command("SEALCACHE.ISSUETOKEN", "acme"))
        r = self.org(token=issued["token"].decode())
        self.assertTrue(r.ping())
        admin.execute_command("SEALCACHE.REVOKETOKEN", "acme", issued["token_id"])
        with self.assertRaises(redis.exceptions.AuthenticationError):
            r.ping()

    def test_a_dropped_orgs_sessions_end_and_never_reach_its_successor(self):
        admin = self.server.admin()
        token = pairs(admin.execute_command("SEALCACHE.CREATEORG", "delta", 4))["token"].decode()
        old = redis.Redis(port=self.server.port, username="delta", password=token,
                          single_connection_client=True)
        self.assertTrue(old.ping())
        admin.execute_command("SEALCACHE.DROPORG", "delta")
        admin.execute_command("SEALCACHE.CREATEORG", "delta", 4)
        with self.assertRaises(redis.exceptions.AuthenticationError):
            old.ping()
        # The client reconnects and says AUTH with the old token: refused.
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            old.ping()
        self.assertIn("WRONGPASS", str(e.exception))

    def test_unknown_commands_and_wrong_arity_use_redis_wording(self):
        r = self.org()
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.execute_command("NOSUCH", "a", "b")
        self.assertEqual(str(e.exception),
                         "unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.execute_command("ECHO")
        self.assertEqual(str(e.exception), "wrong number of arguments for 'echo' command")

    def test_connection_commands(self):
        r = redis.Redis(port=self.server.port, username="acme", password=self.acme_token,
                        single_connection_client=True)
        self.assertEqual(r.echo("hi there"), b"hi there")
        auth = b"AUTH acme " + self.acme_token.encode() + b"\r\n"
        self.assertEqual(raw(self.server.port, auth + b"PING x\r\n", until=b"x\r\n"),
                         b"+OK\r\n$1\r\nx\r\n")
        self.assertTrue(r.execute_command("SELECT", 0))
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.execute_command("SELECT", 1)
        self.assertEqual(str(e.exception), "DB index is out of range")
        self.assertTrue(r.client_setname("gateway-1"))
        self.assertEqual(r.client_getname(), "gateway-1")
        self.assertIsInstance(r.client_id(), int)

    def test_pipelined_commands_are_answered_in_order(self):
        p = self.org().pipeline(transaction=False)
        for i in range(2000):
            p.echo("message %d" % i)
        self.assertEqual(p.execute(), [b"message %d" % i for i in range(2000)])

    def test_a_hundred_thousand_pipelined_commands_on_one_connection(self):
        """Sent in one go, before any reply is read: the server answers them all, in order,
        without buffering replies without bound (it stops reading while 1 MiB is unread)."""
        n = 100000
        wire = b"AUTH acme " + self.acme_token.encode() + b"\r\n"
        wire += b"".join(b"SET p:%d %d EX 600\r\n" % (i % 1000, i) for i in range(n // 2))
        wire += b"".join(b"GET p:%d\r\n" % (i % 1000) for i in range(n // 2))
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=60) as s:
            s.sendall(wire)  # the server reads while we send: replies pile up in our buffer
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                out += chunk
        replies = out.split(b"\r\n")
        self.assertEqual(replies[0], b"+OK")
        self.assertEqual(replies[1:1 + n // 2], [b"+OK"] * (n // 2))
        # The GETs see the last SET of each key: value 49000 + key number.
        gets = [r for r in replies[1 + n // 2:] if r and not r.startswith(b"$")]
        self.assertEqual(len(gets), n // 2)
        self.assertEqual(gets[:3], [b"49000", b"49001", b"49002"])
        self.assertEqual(gets[-1], b"49999")
        self.assertTrue(self.org().flushdb())  # the other tests of the class see an empty org

    def test_hello_3_answers_a_resp3_map_and_hello_2_a_flat_array(self):
        auth = b"AUTH acme " + self.acme_token.encode()
        three = raw(self.server.port, b"HELLO 3 " + auth + b"\r\n", until=b"*0\r\n")
        self.assertTrue(three.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), three)
        self.assertIn(b"$5\r\nproto\r\n:3\r\n", three)
        two = raw(self.server.port, b"HELLO 2 " + auth + b"\r\n", until=b"*0\r\n")
        self.assertTrue(two.startswith(b"*14\r\n"), two)
        self.assertEqual(raw(self.server.port, b"HELLO 4\r\n", until=b"\r\n"),
                         b"-NOPROTO unsupported protocol version\r\n")

    def test_a_protocol_error_is_answered_and_closes_the_connection(self):
        reply = raw(self.server.port, b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\nPING\r\n")
        self.assertEqual(reply, b"-ERR Protocol error: expected '$', got 'f'\r\n")
        # Past the 4 KiB bound before AUTH, within one read of the server (a close with
        # unread input would reset the connection and could destroy the reply).
        big = raw(self.server.port, b"*1\r\n$6000\r\n" + b"x" * 6000)
        self.assertEqual(big, b"-ERR Protocol error: request too large before AUTH\r\n")

    def test_server_introspection_commands(self):
        r = self.org()
        info = r.info()
        self.assertEqual(info["redis_version"], "7.2.0")
        self.assertEqual(info["redis_mode"], "standalone")
        self.assertEqual(info["loading"], 0)
        self.assertEqual(info["cluster_enabled"], 0)
        self.assertEqual(info["role"], "master")
        self.assertGreaterEqual(info["connected_clients"], 1)
        # The org's hit rate where monitors read Redis's: keyspace_hits and _misses.
        before = r.info("stats")
        r.set("info:hit", "v")
        r.get("info:hit")
        r.get("info:miss")
        after = r.info("stats")
        self.assertEqual(after["keyspace_hits"] - before["keyspace_hits"], 1)
        self.assertEqual(after["keyspace_misses"] - before["keyspace_misses"], 1)
        # As in Redis, an expiry change (a cache hit's TTL refresh) is not a lookup.
        self.assertTrue(r.expire("info:hit", 100))
        self.assertFalse(r.expire("info:miss", 100))
        self.assertTrue(r.pexpire("info:hit", 90_000, xx=True))
        self.assertFalse(r.expire("info:hit", 100, nx=True))
        self.assertEqual(r.info("stats")["keyspace_hits"], after["keyspace_hits"])
        self.assertEqual(r.info("stats")["keyspace_misses"], after["keyspace_misses"])
        self.assertTrue(85 <= r.ttl("info:hit") <= 90)
        r.delete("info:hit")
        self.assertEqual(r.info("persistence"), {"loading": 0})
        self.assertEqual(r.info("nosuchsection"), {})
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.config_get("save"), {"save": ""})
        self.assertEqual(r.config_get("*"), {"save": "", "appendonly": "no"})
        self.assertEqual(r.execute_command("MODULE", "LIST"),
                         [[b"name", b"search", b"ver", 20811, b"path", b"", b"args", []]])
        described = r.command()  # redis-py parses Redis 7's layout into a dict by name
        self.assertEqual(len(described), r.command_count())
        self.assertEqual(described["ping"]["arity"], -1)
        self.assertIn("admin", described["sealcache.createorg"]["flags"])
        ping = r.execute_command("COMMAND INFO", "ping", "nosuch")
        self.assertEqual(ping[0][:2], [b"ping", -1])
        self.assertIsNone(ping[1])
        # RESP3: INFO is a verbatim string.
        auth = b"HELLO 3 AUTH acme " + self.acme_token.encode() + b"\r\n"
        reply = raw(self.server.port, auth + b"INFO cluster\r\n", until=b"cluster_enabled:0\r\n\r\n")
        self.assertTrue(reply.endswith(b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n"), reply)

    def test_redis_cli_in_resp2_and_resp3(self):
        base = ["redis-cli", "-p", str(self.server.port), "--user", "acme", "--pass",
                self.acme_token, "--no-auth-warning"]
        out = subprocess.run(base + ["PING"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "PONG")
        out = subprocess.run(base + ["-3", "HELLO", "3"], capture_output=True, text=True,
                             check=True)
        self.assertIn("proto", out.stdout)
        self.assertIn("3", out.stdout)
        out = subprocess.run(base + ["SEALCACHE.LISTORGS"], capture_output=True, text=True)
        self.assertIn("no permissions", out.stdout + out.stderr)


class TwoOrgs(unittest.TestCase):
    """A server with orgs acme and globex (dimension DIM) and helpers to reach them."""

    DIM = 4

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        admin = cls.server.admin()
        cls.tokens = {org: pairs(admin.execute_command("SEALCACHE.CREATEORG", org, cls.DIM))["token"]
                      for org in ("acme", "globex")}

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def org(self, org="acme", **kwargs):
        return redis.Redis(port=self.server.port, username=org, password=self.tokens[org],
                           **kwargs)

    def error_of(self, fn, *args):
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            fn(*args)
        return str(e.exception)

    def kill_while_writing(self, write_one, seconds=1.5):
        """Calls write_one(0), write_one(1), ... on a thread until the server is killed
        (SIGKILL) and restarted `seconds` later; returns how many calls returned, that is
        were acknowledged."""
        stop = threading.Event()
        acked = [0]

        def loop():
            try:
                while not stop.is_set():
                    write_one(acked[0])
                    acked[0] += 1
            except redis.exceptions.ConnectionError:
                pass

        t = threading.Thread(target=loop)
        t.start()
        time.sleep(seconds)
        self.server.kill_and_restart()
        stop.set()
        t.join()
        return acked[0]


class ExactCache(TwoOrgs):
    """Strings: an entry per key, without a vector, encrypted under the org's keys."""

    def test_set_and_get_with_every_option(self):
        r = self.org()
        self.assertTrue(r.set("answer:1", "forty-two"))
        self.assertEqual(r.get("answer:1"), b"forty-two")
        self.assertIsNone(r.get("answer:none"))
        self.assertEqual(r.set("answer:1", "42", get=True), b"forty-two")
        self.assertIsNone(r.set("answer:1", "x", nx=True))
        self.assertEqual(r.get("answer:1"), b"42")
        self.assertIsNone(r.set("answer:2", "x", xx=True))
        self.assertIsNone(r.get("answer:2"))
        self.assertTrue(r.set("answer:2", "new", nx=True, ex=100))
        self.assertTrue(95 <= r.ttl("answer:2") <= 100)
        self.assertTrue(r.set("answer:2", "newer", xx=True, keepttl=True))
        self.assertTrue(95 <= r.ttl("answer:2") <= 100)
        self.assertEqual(r.get("answer:2"), b"newer")
        self.assertTrue(r.set("answer:3", "v", px=250_000))
        self.assertTrue(249_000 <= r.pttl("answer:3") <= 250_000)
        self.assertTrue(r.set("answer:3", "v", exat=int(time.time()) + 500))
        self.assertTrue(490 <= r.ttl("answer:3") <= 500)
        self.assertTrue(r.set("answer:3", "v", pxat=int(time.time() * 1000) + 600_000))
        self.assertTrue(590 <= r.ttl("answer:3") <= 600)
        # Without a TTL a write gets the default one (a day): every entry expires.
        self.assertTrue(r.set("answer:4", "v"))
        self.assertTrue(86_390 <= r.ttl("answer:4") <= 86_400)
        # A time already past: set and at once gone, as in Redis.
        self.assertTrue(r.set("answer:4", "v", exat=int(time.time()) - 10))
        self.assertIsNone(r.get("answer:4"))
        self.assertEqual(self.error_of(r.execute_command, "SET", "k", "v", "EX", "0"),
                         "invalid expire time in 'set' command")
        self.assertEqual(self.error_of(r.execute_command, "SET", "k", "v", "EX", "x"),
                         "value is not an integer or out of range")
        self.assertEqual(self.error_of(r.execute_command, "SET", "k", "v", "NX", "XX"),
                         "syntax error")
        self.assertEqual(self.error_of(r.execute_command, "SET", "k", "v", "EX", "1", "PX", "1"),
                         "syntax error")
        self.assertEqual(r.setex("answer:5", 30, "five"), True)
        self.assertTrue(25 <= r.ttl("answer:5") <= 30)
        self.assertTrue(r.psetex("answer:5", 40_000, "five"))
        self.assertTrue(35 <= r.ttl("answer:5") <= 40)
        self.assertEqual(self.error_of(r.setex, "answer:5", 0, "x"),
                         "invalid expire time in 'setex' command")
        # Binary-safe names and values, up to large values.
        name, value = b"bin\x00\xff\r\nkey", bytes(range(256)) * 4096
        self.assertTrue(r.set(name, value))
        self.assertEqual(r.get(name), value)

    def test_mget_del_unlink_exists_and_type(self):
        r = self.org()
        r.set("multi:1", "one")
        r.set("multi:2", "two")
        self.assertEqual(r.mget("multi:1", "multi:none", "multi:2"), [b"one", None, b"two"])
        self.assertEqual(r.exists("multi:1", "multi:2", "multi:none", "multi:1"), 3)
        self.assertEqual(r.type("multi:1"), b"string")
        self.assertEqual(r.type("multi:none"), b"none")
        self.assertEqual(r.delete("multi:1", "multi:none"), 1)
        self.assertEqual(r.unlink("multi:2", "multi:1"), 1)
        self.assertEqual(r.exists("multi:1", "multi:2"), 0)

    def test_expire_ttl_and_what_every_entry_expiring_means(self):
        r = self.org()
        r.set("exp:1", "v", ex=100)
        self.assertEqual(r.ttl("exp:none"), -2)
        self.assertEqual(r.pttl("exp:none"), -2)
        self.assertFalse(r.expire("exp:none", 10))
        self.assertTrue(r.expire("exp:1", 200))
        self.assertTrue(195 <= r.ttl("exp:1") <= 200)
        self.assertFalse(r.expire("exp:1", 100, gt=True))
        self.assertTrue(r.expire("exp:1", 300, gt=True))
        self.assertFalse(r.expire("exp:1", 400, lt=True))
        self.assertTrue(r.pexpire("exp:1", 150_000, lt=True))
        self.assertTrue(145 <= r.ttl("exp:1") <= 150)
        self.assertFalse(r.expire("exp:1", 10, nx=True))  # it always has an expiry
        self.assertTrue(r.expire("exp:1", 120, xx=True))
        self.assertTrue(r.expireat("exp:1", int(time.time()) + 50))
        self.assertTrue(45 <= r.ttl("exp:1") <= 50)
        self.assertTrue(r.pexpireat("exp:1", int(time.time() * 1000) + 70_000))
        self.assertEqual(r.get("exp:1"), b"v")  # the value survives every change
        self.assertEqual(
            self.error_of(r.execute_command, "EXPIRE", "exp:1", "10", "NX", "XX"),
            "NX and XX, GT or LT options at the same time are not compatible")
        self.assertEqual(self.error_of(r.persist, "exp:1"),
                         "PERSIST is not supported: every sealcache entry expires "
                         "(see server/RESP.md)")
        # A time already past removes the key.
        self.assertTrue(r.expire("exp:1", -1))
        self.assertIsNone(r.get("exp:1"))
        # And entries do expire.
        r.set("exp:2", "short", px=200)
        time.sleep(0.5)
        self.assertIsNone(r.get("exp:2"))
        self.assertEqual(r.exists("exp:2"), 0)

    def test_a_hash_written_with_the_expire_after_it_is_written_once_with_that_expiry(self):
        # RedisVL, LiteLLM and LangChain store an entry as a pipelined HSET and an EXPIRE of
        # its key: the two run as one write of the hash with that expiry (server/RESP.md,
        # "Pipelines"). Each hash reaches the org's log once; run apart, the EXPIRE rewrites it.
        # (An org of its own: no other test's writes in its log.)
        token = pairs(self.server.admin().execute_command("SEALCACHE.CREATEORG", "initech",
                                                          self.DIM))["token"]
        r = redis.Redis(port=self.server.port, username="initech", password=token)
        response = "r" * 4096
        org_dir = os.path.join(self.server.dir, "data", "orgs", "initech")

        def log_bytes():
            return sum(os.path.getsize(os.path.join(org_dir, f))
                       for f in os.listdir(org_dir) if f.endswith(".log"))

        def store(keys, seconds):
            p = r.pipeline(transaction=False)
            for key in keys:
                p.hset(key, mapping={"prompt": key, "response": response})
                p.expire(key, seconds)
            return p.execute()

        before = log_bytes()
        self.assertEqual(store(["once:%d" % i for i in range(50)], 100), [2, True] * 50)
        self.assertLess(log_bytes() - before, 1.5 * 50 * len(response))
        for i in range(50):
            self.assertEqual(r.hget("once:%d" % i, "response"), response.encode())
            self.assertTrue(95 <= r.ttl("once:%d" % i) <= 100, i)
        # Apart (two reads of the server), the same answers, and the hash written twice.
        before = log_bytes()
        for i in range(50):
            self.assertEqual(r.hset("apart:%d" % i, mapping={"response": response}), 1)
            self.assertTrue(r.expire("apart:%d" % i, 100))
        self.assertGreater(log_bytes() - before, 2 * 50 * len(response))
        # Queued in a MULTI (LangChain's RedisCache: redis-py's default pipeline), at the EXEC.
        before = log_bytes()
        p = r.pipeline()
        for i in range(50):
            p.hset("multi:%d" % i, mapping={"response": response})
            p.expire("multi:%d" % i, 100)
        self.assertEqual(p.execute(), [1, True] * 50)
        self.assertLess(log_bytes() - before, 1.5 * 50 * len(response))
        for i in range(50):
            self.assertTrue(95 <= r.ttl("multi:%d" % i) <= 100, i)

        # A changed hash takes the EXPIRE's time, later or earlier than its own.
        p = r.pipeline(transaction=False)
        p.hset("once:0", "extra", "1")
        p.pexpire("once:0", 5_000_000)
        p.hset("once:1", "prompt", "changed")
        p.expire("once:1", 10)
        self.assertEqual(p.execute(), [1, True, 0, True])
        self.assertTrue(4990 <= r.ttl("once:0") <= 5000)
        self.assertTrue(5 <= r.ttl("once:1") <= 10)
        self.assertEqual(r.hgetall("once:1"), {b"prompt": b"changed",
                                               b"response": response.encode()})
        # A time no write may set: the hash is written with its own expiry, the EXPIRE refused
        # as on its own; a refused HSET leaves the EXPIRE to run alone on the key it names.
        r.set("once:string", "s", ex=50)
        p = r.pipeline(transaction=False)
        p.hset("once:far", "f", "v")
        p.expire("once:far", 400 * 86400)
        p.hset("once:string", "f", "v")
        p.expire("once:string", 500)
        far, refused_far, wrong_type, expired = p.execute(raise_on_error=False)
        self.assertEqual(far, 1)
        self.assertIsInstance(refused_far, redis.exceptions.ResponseError)
        self.assertEqual(str(refused_far), self.error_of(r.expire, "once:far", 400 * 86400))
        self.assertGreater(r.ttl("once:far"), 86000)  # the org's default TTL
        self.assertIsInstance(wrong_type, redis.exceptions.ResponseError)
        self.assertTrue(str(wrong_type).startswith("WRONGTYPE"), wrong_type)
        self.assertTrue(expired)
        self.assertTrue(495 <= r.ttl("once:string") <= 500)
        self.assertEqual(r.get("once:string"), b"s")
        # An EXPIRE cut by the end of a read runs apart, after the rest of it arrives; a
        # request cut after an HSET is whole again at the next read.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
            f = s.makefile("rb")
            s.sendall(b"AUTH initech " + token + b"\r\n")
            self.assertEqual(f.readline(), b"+OK\r\n")
            s.sendall(b"HSET once:cut f v\r\nEXPI")
            self.assertEqual(f.readline(), b":1\r\n")
            s.sendall(b"RE once:cut 300\r\nHSET once:cut g w\r\n*3\r\n$6\r\nEXPIRE\r\n$8\r\non")
            self.assertEqual(f.readline(), b":1\r\n")
            self.assertEqual(f.readline(), b":1\r\n")
            s.sendall(b"ce:cut\r\n$2\r\n40\r\nHLEN once:cut\r\n")
            self.assertEqual(f.readline(), b":1\r\n")
            self.assertEqual(f.readline(), b":2\r\n")
        self.assertTrue(35 <= r.ttl("once:cut") <= 40)

    def test_keys_belong_to_their_org_only(self):
        acme, globex = self.org("acme"), self.org("globex")
        before = globex.dbsize()
        acme.set("shared-name", "acme's value")
        self.assertIsNone(globex.get("shared-name"))
        self.assertEqual(globex.exists("shared-name"), 0)
        self.assertEqual(globex.delete("shared-name"), 0)
        self.assertEqual(globex.ttl("shared-name"), -2)
        globex.set("shared-name", "globex's value")
        self.assertEqual(acme.get("shared-name"), b"acme's value")
        self.assertEqual(globex.get("shared-name"), b"globex's value")
        self.assertEqual(globex.dbsize(), before + 1)
        self.assertGreaterEqual(acme.dbsize(), 1)

    def test_pipelines_and_resp3(self):
        r = self.org()
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("pipe:%d" % i, "value %d" % i, ex=600)
        for i in range(1000):
            p.get("pipe:%d" % i)
        replies = p.execute()
        self.assertEqual(replies[:1000], [True] * 1000)
        self.assertEqual(replies[1000:], [b"value %d" % i for i in range(1000)])
        auth = b"HELLO 3 AUTH acme " + self.tokens["acme"] + b"\r\n"
        reply = raw(self.server.port, auth + b"GET pipe:1\r\nGET pipe:none\r\nTTL pipe:none\r\n",
                    until=b":-2\r\n")
        self.assertTrue(reply.endswith(b"$7\r\nvalue 1\r\n_\r\n:-2\r\n"), reply)
        base = ["redis-cli", "-p", str(self.server.port), "--user", "acme", "--pass",
                self.tokens["acme"].decode(), "--no-auth-warning"]
        out = subprocess.run(base + ["GET", "pipe:2"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "value 2")

    def test_acknowledged_pipelined_writes_survive_a_kill(self):
        # The writes of one read reach the log together, before any of their replies goes
        # out (server/RESP.md, "Durability"): every acknowledged one survives SIGKILL.
        r = self.org("globex")

        def write(i):
            p = r.pipeline(transaction=False)
            for k in range(20):
                p.set("kill:%d:%d" % (i, k), "value %d %d" % (i, k))
            p.hset("killh:%d" % i, mapping={"n": str(i)})
            p.expire("killh:%d" % i, 1000)
            p.delete("kill:%d:0" % i)
            p.execute()

        acked = self.kill_while_writing(write)
        self.assertGreater(acked, 5)
        r = self.org("globex")
        for i in range(acked):
            keys = ["kill:%d:%d" % (i, k) for k in range(20)]
            self.assertEqual(r.mget(keys),
                             [None] + [b"value %d %d" % (i, k) for k in range(1, 20)], i)
            self.assertEqual(r.hget("killh:%d" % i, "n"), str(i).encode(), i)
            self.assertTrue(990 <= r.ttl("killh:%d" % i) <= 1000, i)

    def test_names_and_values_never_reach_the_disk_in_plaintext(self):
        r = self.org()
        name, value = b"secret-name-Qx81Jv", b"secret-value-7hLw0p"
        self.assertTrue(r.set(name, value, ex=3600))
        self.server.restart()  # a clean stop: memtables flushed into SSTs
        self.assertEqual(self.server.files_containing(name), [])
        self.assertEqual(self.server.files_containing(value), [])
        self.assertEqual(self.org().get(name), value)
        self.assertTrue(3590 <= self.org().ttl(name) <= 3600)


def vec(*xs):
    """FLOAT32 little-endian bytes, as RedisVL and LangChain send vectors."""
    return struct.pack("<%df" % len(xs), *xs)


def unit(i, dim=8):
    """A distinct direction per i (cosine distance 1 between any two of the first `dim`)."""
    v = [0.0] * dim
    v[i % dim] = 1.0
    return v


class HashesAndSearch(TwoOrgs):
    """Hashes, the keyspace commands and the search module's subset, with the exact command
    sequences of RedisVL's SemanticCache (v0.26 and v0.4, the one LiteLLM pins) and of
    langchain_community's RedisSemanticCache, replayed with redis-py 4.3.4."""

    DIM = 8

    def test_hash_commands_as_redis_answers_them(self):
        r = self.org()
        self.assertEqual(r.hset("h:1", mapping={"a": "1", "b": "2"}), 2)
        self.assertEqual(r.hset("h:1", mapping={"b": "20", "c": "3"}), 1)
        self.assertEqual(r.hget("h:1", "b"), b"20")
        self.assertIsNone(r.hget("h:1", "zz"))
        self.assertIsNone(r.hget("h:none", "a"))
        self.assertEqual(r.hmget("h:1", ["a", "zz", "c"]), [b"1", None, b"3"])
        self.assertEqual(r.hgetall("h:1"), {b"a": b"1", b"b": b"20", b"c": b"3"})
        self.assertEqual(r.hgetall("h:none"), {})
        self.assertEqual(r.hlen("h:1"), 3)
        self.assertTrue(r.hexists("h:1", "a"))
        self.assertFalse(r.hexists("h:1", "zz"))
        self.assertEqual(r.type("h:1"), b"hash")
        self.assertEqual(r.hdel("h:1", "a", "zz"), 1)
        self.assertEqual(r.hdel("h:1", "b", "c"), 2)
        self.assertEqual(r.exists("h:1"), 0)  # the last field took the key with it
        r.set("s:1", "x")
        self.assertIn("WRONGTYPE", self.error_of(r.hset, "s:1", "f", "v"))
        self.assertIn("WRONGTYPE", self.error_of(r.hget, "s:1", "f"))
        r.hset("h:2", "f", "v")
        self.assertIn("WRONGTYPE", self.error_of(r.get, "h:2"))
        self.assertIn("wrong number of arguments for 'hset'",
                      self.error_of(r.execute_command, "HSET", "h:2", "f"))
        self.assertTrue(r.execute_command("HMSET", "h:3", "x", "1"))  # +OK
        self.assertTrue(0 < r.ttl("h:2") <= 86400)  # every entry expires
        self.assertTrue(r.expire("h:2", 100))
        self.assertTrue(95 <= r.ttl("h:2") <= 100)
        r.hset("h:2", "g", "w")  # a write keeps the expiry, as in Redis
        self.assertTrue(95 <= r.ttl("h:2") <= 100)
        self.assertEqual(r.hgetall("h:2"), {b"f": b"v", b"g": b"w"})

    def test_scan_keys_and_flushdb_see_the_sessions_org_only(self):
        a, g = self.org("acme"), self.org("globex")
        g.set("scan:globex", "g")
        names = {"scan:%03d" % i for i in range(250)}
        p = a.pipeline(transaction=False)
        for n in sorted(names):
            p.set(n, "v")
        p.hset("scanh:1", "f", "v")
        p.execute()
        seen, cursor, rounds = set(), 0, 0
        while True:
            cursor, keys = a.scan(cursor, match="scan:*", count=40)
            seen.update(k.decode() for k in keys)
            rounds += 1
            if cursor == 0:
                break
        self.assertEqual(seen, names)
        self.assertGreater(rounds, 3)
        self.assertEqual({k.decode() for k in a.scan_iter(match="scan*", _type="hash")},
                         {"scanh:1"})
        self.assertEqual(set(a.keys("scan:00?")), {("scan:00%d" % i).encode() for i in range(10)})
        self.assertEqual(a.keys("scan:glob*"), [])
        self.assertEqual(g.keys("scan:*"), [b"scan:globex"])
        self.assertIn("invalid cursor", self.error_of(a.execute_command, "SCAN", "x"))
        # FLUSHDB empties acme and leaves globex alone.
        other = redis.Redis(port=self.server.port, username="acme",
                            password=self.tokens["acme"])
        self.assertTrue(other.flushdb())
        self.assertEqual(a.dbsize(), 0)
        self.assertEqual(a.keys("*"), [])
        self.assertEqual(g.get("scan:globex"), b"g")

    def test_multi_exec_and_discard(self):
        r = self.org("acme")
        p = r.pipeline(transaction=True)  # MULTI ... EXEC
        p.hset("tx:1", mapping={"a": "1"})
        p.expire("tx:1", 50)
        p.set("tx:2", "two")
        p.hgetall("tx:1")
        self.assertEqual(p.execute(), [1, True, True, {b"a": b"1"}])
        self.assertTrue(45 <= r.ttl("tx:1") <= 50)
        auth = b"AUTH acme " + self.tokens["acme"] + b"\r\n"
        reply = raw(self.server.port, auth + b"MULTI\r\nSET tx:3 x\r\nDISCARD\r\nGET tx:3\r\n"
                    b"EXEC\r\n", until=b"MULTI\r\n")
        self.assertEqual(reply, b"+OK\r\n+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n"
                                b"-ERR EXEC without MULTI\r\n")
        reply = raw(self.server.port, auth + b"MULTI\r\nSET tx:4 x\r\nNOSUCH\r\nEXEC\r\n"
                    b"GET tx:4\r\n", until=b"$-1\r\n")
        self.assertIn(b"-ERR unknown command 'NOSUCH'", reply)
        self.assertIn(b"-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n",
                      reply)
        reply = raw(self.server.port, b"MULTI\r\n", until=b"\r\n")
        self.assertEqual(reply, b"-NOAUTH Authentication required.\r\n")

    def test_module_list_hello_and_ft_list(self):
        r = self.org()
        modules = r.execute_command("MODULE", "LIST")
        self.assertEqual(len(modules), 1)
        module = pairs(modules[0])
        self.assertEqual(module["name"], b"search")
        self.assertEqual(module["ver"], 20811)
        self.assertIsInstance(r.execute_command("FT._LIST"), list)

    def test_redisvl_semantic_cache_v026_sequence(self):
        """RedisVL 0.26's SemanticCache on the wire (shared/notes/RESP_CLIENTS.md), with a
        LiteLLM-style tag filter field."""
        r = self.org("acme")
        r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py(redisvl_v0.26.0)")
        # init: the index does not exist yet
        self.assertIn("Unknown index name", self.error_of(r.execute_command, "FT.INFO", "llmcache"))
        self.assertEqual(r.execute_command(
            "FT.CREATE", "llmcache", "ON", "HASH", "PREFIX", "1", "llmcache", "SCORE", "1.0",
            "SCHEMA", "prompt", "TEXT", "WEIGHT", "1", "response", "TEXT", "WEIGHT", "1",
            "inserted_at", "NUMERIC", "updated_at", "NUMERIC", "litellm_cache_key", "TAG",
            "SEPARATOR", ",", "prompt_vector", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM",
            str(self.DIM), "DISTANCE_METRIC", "COSINE"), b"OK")
        self.assertIn("Index already exists", self.error_of(
            r.execute_command, "FT.CREATE", "llmcache", "SCHEMA", "prompt", "TEXT"))
        info = pairs(r.execute_command("FT.INFO", "llmcache"))
        self.assertEqual(info["index_name"], b"llmcache")
        self.assertEqual(info["index_definition"][:4], [b"key_type", b"HASH", b"prefixes",
                                                         [b"llmcache"]])
        vector_attr = [a for a in info["attributes"] if a[1] == b"prompt_vector"][0]
        self.assertEqual(vector_attr, [b"identifier", b"prompt_vector", b"attribute",
                                       b"prompt_vector", b"type", b"VECTOR", b"algorithm",
                                       b"FLAT", b"data_type", b"FLOAT32", b"dim",
                                       str(self.DIM).encode(), b"distance_metric", b"COSINE"])
        tag_attr = [a for a in info["attributes"] if a[1] == b"litellm_cache_key"][0]
        self.assertEqual(tag_attr[4:], [b"type", b"TAG", b"SEPARATOR", b","])
        self.assertIn(b"llmcache", r.execute_command("FT._LIST"))

        # store: pipelined HSET + EXPIRE
        def store(key, prompt, response, v, cache_key, ttl=None):
            p = r.pipeline(transaction=False)
            p.hset(key, mapping={"entry_id": key[-8:], "prompt": prompt, "response": response,
                                 "prompt_vector": vec(*v), "inserted_at": time.time(),
                                 "updated_at": time.time(), "litellm_cache_key": cache_key})
            if ttl:
                p.expire(key, ttl)
            return p.execute()

        self.assertEqual(store("llmcache:aaaa0001", "What is the capital of France?", "Paris",
                               unit(0), "gpt-4o", ttl=600), [7, True])
        store("llmcache:aaaa0002", "How tall is Mont Blanc?", "4,806 m", unit(1), "gpt-4o")
        store("llmcache:aaaa0003", "What is France's capital city?", "Paris (mini)",
              [0.99, 0.1, 0, 0, 0, 0, 0, 0], "gpt-4o-mini")
        self.assertEqual(pairs(r.execute_command("FT.INFO", "llmcache"))["num_docs"], 3)

        def check(v, threshold=0.1, cache_key=None, num_results=1):
            query = ("@prompt_vector:[VECTOR_RANGE $distance_threshold $vector]"
                     "=>{$YIELD_DISTANCE_AS: vector_distance}")
            if cache_key is not None:
                query = "(" + query + " @litellm_cache_key:{" + cache_key + "})"
            return r.execute_command(
                "FT.SEARCH", "llmcache", query, "RETURN", "7", "entry_id", "prompt", "response",
                "inserted_at", "updated_at", "metadata", "vector_distance", "SORTBY",
                "vector_distance", "ASC", "DIALECT", "2", "LIMIT", "0", str(num_results),
                "PARAMS", "4", "vector", vec(*v), "distance_threshold", str(threshold))

        # A near duplicate of the first prompt: a hit, the nearest first, distance as a string.
        near = [1.0, 0.05, 0, 0, 0, 0, 0, 0]
        reply = check(near, num_results=5)
        self.assertEqual(reply[0], 2)  # both France entries are within 0.1
        self.assertEqual((reply[1], reply[3]), (b"llmcache:aaaa0001", b"llmcache:aaaa0003"))
        reply = check(near)  # LIMIT 0 1: the nearest only (total counts what was searched)
        self.assertEqual(reply[:2], [1, b"llmcache:aaaa0001"])
        hit = pairs(reply[2])
        self.assertEqual(hit["response"], b"Paris")
        self.assertLess(float(hit["vector_distance"]), 0.01)
        self.assertNotIn("prompt_vector", hit)  # not asked for in RETURN
        self.assertEqual(len(reply), 3)
        # The tag filter runs inside the search: the mini entry is found for its own key only.
        reply = check(near, cache_key="gpt\\-4o\\-mini")
        self.assertEqual((reply[0], reply[1]), (1, b"llmcache:aaaa0003"))
        self.assertEqual(check(near, cache_key="claude")[0], 0)
        # Far from everything: a miss.
        self.assertEqual(check(unit(5)), [0])
        # TTL refresh on hit
        self.assertTrue(r.expire("llmcache:aaaa0001", 900))
        self.assertTrue(890 <= r.ttl("llmcache:aaaa0001") <= 900)
        # update: HSET of some fields keeps the vector searchable
        r.hset("llmcache:aaaa0001", mapping={"response": "Paris, France", "updated_at": 1.0})
        hit = pairs(check(near)[2])
        self.assertEqual(hit["response"], b"Paris, France")
        # numeric filter
        reply = r.execute_command("FT.SEARCH", "llmcache", "@updated_at:[0 (2]", "NOCONTENT",
                                  "DIALECT", "2")
        self.assertEqual(reply, [1, b"llmcache:aaaa0001"])
        # clear(): SCAN + DEL
        keys = list(r.scan_iter(match="llmcache:*", count=100))
        self.assertEqual(len(keys), 3)
        self.assertEqual(r.delete(*keys), 3)
        self.assertEqual(check(near), [0])
        self.assertEqual(pairs(r.execute_command("FT.INFO", "llmcache"))["num_docs"], 0)
        # delete(): FT.DROPINDEX DD
        store("llmcache:aaaa0004", "again", "again", unit(2), "gpt-4o")
        self.assertEqual(r.execute_command("FT.DROPINDEX", "llmcache", "DD"), b"OK")
        self.assertEqual(r.exists("llmcache:aaaa0004"), 0)
        self.assertNotIn(b"llmcache", r.execute_command("FT._LIST"))
        self.assertIn("Unknown index name",
                      self.error_of(r.execute_command, "FT.SEARCH", "llmcache", "*"))

    def test_knn_queries_with_redis_py_search_api_and_prefilters(self):
        from redis.commands.search.field import NumericField, TagField, TextField, VectorField
        from redis.commands.search.indexDefinition import IndexDefinition, IndexType
        from redis.commands.search.query import Query
        r = self.org("globex")
        ft = r.ft("docs")
        ft.create_index([TextField("content"), TagField("lang"), NumericField("year"),
                         VectorField("content_vector", "HNSW",
                                     {"TYPE": "FLOAT32", "DIM": self.DIM,
                                      "DISTANCE_METRIC": "COSINE"})],
                        definition=IndexDefinition(prefix=["doc:docs:"],
                                                   index_type=IndexType.HASH))
        for i in range(8):
            r.hset("doc:docs:%d" % i, mapping={"content": "document %d" % i,
                                               "lang": "en" if i % 2 == 0 else "fr",
                                               "year": 2000 + i,
                                               "content_vector": vec(*unit(i))})
        r.hset("other:1", mapping={"content_vector": vec(*unit(0))})  # outside the prefix
        q = (Query("*=>[KNN 3 @content_vector $vector AS vector_score]")
             .return_fields("content", "vector_score").sort_by("vector_score").paging(0, 3)
             .dialect(2))
        res = ft.search(q, query_params={"vector": vec(*unit(2))})
        self.assertEqual(res.total, 3)
        self.assertEqual(res.docs[0].id, "doc:docs:2")
        self.assertEqual(res.docs[0].content, "document 2")
        self.assertAlmostEqual(float(res.docs[0].vector_score), 0.0, places=5)
        self.assertNotIn("other:1", [d.id for d in res.docs])
        # A pre-filter inside the search: French documents only, years 2003..2005.
        q = (Query("(@lang:{fr} @year:[2003 2005])=>[KNN 5 @content_vector $vector AS score]")
             .return_fields("lang", "year", "score").dialect(2))
        res = ft.search(q, query_params={"vector": vec(*unit(3))})
        self.assertEqual([d.id for d in res.docs], ["doc:docs:3", "doc:docs:5"])
        self.assertTrue(all(d.lang == "fr" for d in res.docs))
        # Errors name the problem.
        self.assertIn("DIM", self.error_of(r.execute_command, "FT.CREATE", "bad", "SCHEMA", "v",
                                           "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", "3",
                                           "DISTANCE_METRIC", "COSINE"))
        self.assertIn("COSINE", self.error_of(r.execute_command, "FT.CREATE", "bad", "SCHEMA",
                                              "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32",
                                              "DIM", str(self.DIM), "DISTANCE_METRIC", "L2"))
        self.assertIn("FLOAT32", self.error_of(r.execute_command, "FT.CREATE", "bad", "SCHEMA",
                                               "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT64",
                                               "DIM", str(self.DIM), "DISTANCE_METRIC", "COSINE"))
        # Indexes belong to their org: acme sees none of globex's.
        self.assertNotIn(b"docs", self.org("acme").execute_command("FT._LIST"))
        self.assertIn("Unknown index name", self.error_of(
            self.org("acme").execute_command, "FT.INFO", "docs"))
        # The definitions survive a restart (an encrypted side file) and the hashes are found
        # again, filter values reloaded from their records.
        self.server.restart()
        r = self.org("globex")
        res = r.ft("docs").search(
            Query("(@lang:{en})=>[KNN 2 @content_vector $vector AS score]").dialect(2),
            query_params={"vector": vec(*unit(4))})
        self.assertEqual([d.id for d in res.docs][:1], ["doc:docs:4"])
        self.assertTrue(all(d.lang == "en" for d in res.docs))
        self.assertEqual(self.server.files_containing(b"doc:docs:"), [])
        self.assertEqual(self.server.files_containing(b"content_vector"), [])

    def test_an_index_created_after_its_hashes_finds_them(self):
        r = self.org("acme")
        r.hset("late:1", mapping={"v": vec(*unit(6)), "t": "x"})
        r.execute_command("FT.CREATE", "late", "ON", "HASH", "PREFIX", "1", "late:", "SCHEMA",
                          "t", "TAG", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM",
                          str(self.DIM), "DISTANCE_METRIC", "COSINE")
        reply = r.execute_command("FT.SEARCH", "late", "*=>[KNN 1 @v $q AS d]", "PARAMS", "2",
                                  "q", vec(*unit(6)), "DIALECT", "2")
        self.assertEqual(reply[:2], [1, b"late:1"])
        reply = r.execute_command("FT.SEARCH", "late", "@t:{x}", "NOCONTENT")
        self.assertEqual(reply, [1, b"late:1"])
        r.execute_command("FT.DROPINDEX", "late")
        self.assertEqual(r.hget("late:1", "t"), b"x")  # without DD the hashes stay

    def test_redisvl_v04_module_and_index_list_checks(self):
        """RedisVL 0.4 (the version LiteLLM's docs pin) refuses a server without a search
        module >= 2.6 in MODULE LIST and tests an index's existence with FT._LIST."""
        r = self.org("globex")
        modules = r.execute_command("MODULE", "LIST")
        found = {pairs(m)["name"]: pairs(m)["ver"] for m in modules}
        self.assertGreaterEqual(found.get(b"search", 0), 20600)
        self.assertNotIn(b"litellm_semantic_cache_index", r.execute_command("FT._LIST"))
        r.execute_command("FT.CREATE", "litellm_semantic_cache_index", "ON", "HASH", "PREFIX",
                          "1", "litellm_semantic_cache_index", "SCHEMA", "litellm_cache_key",
                          "TAG", "prompt_vector", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM",
                          str(self.DIM), "DISTANCE_METRIC", "COSINE")
        self.assertIn(b"litellm_semantic_cache_index", r.execute_command("FT._LIST"))
        info = r.info("memory")
        self.assertGreater(info["used_memory"], 0)
        self.assertEqual(info["maxmemory"], 0)

    def test_langchain_community_semantic_cache_sequence(self):
        """langchain_community's RedisSemanticCache (not RedisVL): MODULE LIST check, FT.INFO
        as existence test, FT.CREATE, pipelined HSET, VECTOR_RANGE lookup."""
        r = self.org("acme")
        self.assertEqual(r.info("cluster"), {"cluster_enabled": 0})
        modules = [pairs(m) for m in r.execute_command("MODULE", "LIST")]
        self.assertTrue(any(m["name"] == b"search" and m["ver"] >= 20600 for m in modules))
        index = "cache:0123abcd"
        with self.assertRaises(redis.exceptions.ResponseError):
            r.execute_command("FT.INFO", index)
        r.execute_command("FT.CREATE", index, "ON", "HASH", "PREFIX", "1", "doc:" + index,
                          "SCHEMA", "prompt", "TEXT", "WEIGHT", "1", "content_vector", "VECTOR",
                          "FLAT", "6", "TYPE", "FLOAT32", "DIM", str(self.DIM),
                          "DISTANCE_METRIC", "COSINE")
        p = r.pipeline(transaction=False)
        p.hset("doc:%s:%s" % (index, "f" * 32), mapping={
            "prompt": "tell me a joke", "content_vector": vec(*unit(3)),
            "llm_string": "fake-llm", "return_val": '[{"text": "why did the chicken"}]'})
        p.execute()
        reply = r.execute_command(
            "FT.SEARCH", index, "@content_vector:[VECTOR_RANGE $distance_threshold $vector]"
            "=>{$yield_distance_as: distance}", "RETURN", "4", "prompt", "llm_string",
            "return_val", "distance", "SORTBY", "distance", "ASC", "DIALECT", "2", "LIMIT", "0",
            "1", "PARAMS", "4", "vector", vec(*[0.05, 0, 0, 1, 0, 0, 0, 0]),
            "distance_threshold", "0.2")
        self.assertEqual(reply[0], 1)
        doc = pairs(reply[2])
        self.assertEqual(doc["return_val"], b'[{"text": "why did the chicken"}]')
        self.assertLess(float(doc["distance"]), 0.2)

    def test_search_in_resp3(self):
        auth = (b"HELLO 3 AUTH globex " + self.tokens["globex"] + b"\r\n")
        r = self.org("globex")
        r.execute_command("FT.CREATE", "r3", "PREFIX", "1", "r3:", "SCHEMA", "v", "VECTOR",
                          "FLAT", "6", "TYPE", "FLOAT32", "DIM", str(self.DIM),
                          "DISTANCE_METRIC", "COSINE")
        r.hset("r3:1", mapping={"v": vec(*unit(7)), "n": "one"})
        blob = vec(*unit(7))
        cmd = [b"FT.SEARCH", b"r3", b"*=>[KNN 1 @v $q AS d]", b"RETURN", b"1", b"n", b"PARAMS",
               b"2", b"q", blob, b"DIALECT", b"2"]
        wire = b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in cmd)
        reply = raw(self.server.port, auth + wire, until=b"warning\r\n*0\r\n")
        self.assertIn(b"%5\r\n$10\r\nattributes\r\n*0\r\n$6\r\nformat\r\n$6\r\nSTRING\r\n"
                      b"$7\r\nresults\r\n*1\r\n%3\r\n$2\r\nid\r\n$4\r\nr3:1\r\n"
                      b"$16\r\nextra_attributes\r\n%1\r\n$1\r\nn\r\n$3\r\none\r\n"
                      b"$6\r\nvalues\r\n*0\r\n$13\r\ntotal_results\r\n:1\r\n", reply)


class Capacity(unittest.TestCase):
    """Capacity limits as Redis clients see maxmemory: -OOM under noeviction, eviction under
    the other policies, INFO's maxmemory, maxmemory_policy and evicted_keys."""

    OOM = "OOM command not allowed when used memory > 'maxmemory'."

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.admin = cls.server.admin()
        cls.token = pairs(cls.admin.execute_command(
            "SEALCACHE.CREATEORG", "small", 4, "MAXENTRIES", 5, "POLICY", "noeviction"))["token"]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_noeviction_answers_oom_then_a_lower_limit_evicts_and_info_shows_it(self):
        r = redis.Redis(port=self.server.port, username="small", password=self.token.decode())
        for i in range(5):
            self.assertTrue(r.set("k%d" % i, "v%d" % i))
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.set("k5", "v5")
        self.assertTrue(str(e.exception).startswith(self.OOM), str(e.exception))
        self.assertIn("noeviction", str(e.exception))
        self.assertIsNone(r.get("k5"))
        self.assertEqual(r.dbsize(), 5)
        memory = r.info("memory")
        self.assertEqual(memory["maxmemory_policy"], "noeviction")
        self.assertEqual(memory["sealcache_org_entries"], 5)
        self.assertEqual(memory["sealcache_org_max_entries"], 5)

        # The admin lowers the limit and switches to LRU: the two least recently used go now.
        self.assertEqual(r.get("k0"), b"v0")
        self.assertEqual(r.get("k1"), b"v1")
        self.assertEqual(r.get("k4"), b"v4")
        self.assertEqual(self.admin.execute_command(
            "SEALCACHE.SETLIMITS", "small", "MAXENTRIES", 3, "MAXBYTES", 100000, "POLICY", "lru"), 2)
        self.assertEqual(r.dbsize(), 3)
        self.assertEqual(sorted(r.keys("*")), [b"k0", b"k1", b"k4"])
        self.assertTrue(r.set("k6", "v6"))  # evicts one more instead of refusing
        self.assertEqual(r.dbsize(), 3)
        memory = r.info("memory")
        self.assertEqual(memory["maxmemory"], 100000)
        self.assertEqual(memory["maxmemory_policy"], "allkeys-lru")
        self.assertEqual(r.info("stats")["evicted_keys"], 3)
        listed = {pairs(o)["org"]: pairs(o) for o in self.admin.execute_command("SEALCACHE.LISTORGS")}
        self.assertEqual(listed[b"small"]["max_entries"], 3)
        self.assertEqual(listed[b"small"]["eviction_policy"], b"lru")
        self.assertEqual(listed[b"small"]["entries"], 3)
        for bad in (["POLICY", "fifo"], ["MAXENTRIES", "-1"], ["MAXENTRIES"], ["COLOUR", "red"]):
            with self.assertRaises(redis.exceptions.ResponseError):
                self.admin.execute_command("SEALCACHE.SETLIMITS", "small", *bad)
        self.assertEqual(r.dbsize(), 3, "a refused change changes nothing")


class IsolationMatrix(unittest.TestCase):
    """The native protocol's session matrix over RESP: every data command in every session
    state (none, own org, another org, admin, revoked token, revoked admin token, dropped org,
    re-created org) either answers for its own org or is refused; none reveals or changes the
    victim org's keys, hashes or indexes."""

    DIM = 4
    SECRET = b"victim-secret-Zq93"

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def connect(self, user, token):
        c = redis.Redis(port=self.server.port)
        c.execute_command("AUTH", user, token)
        return c

    def commands(self):
        v = vec(1, 0, 0, 0)
        return [
            ("GET", "v:str"), ("SET", "v:str", "overwritten"), ("MGET", "v:str", "v:hash"),
            ("HGETALL", "v:hash"), ("HSET", "v:hash", "f", "overwritten"), ("HDEL", "v:hash", "f"),
            ("DEL", "v:str"), ("EXISTS", "v:str"), ("TYPE", "v:hash"), ("TTL", "v:str"),
            ("EXPIRE", "v:str", "1"), ("SCAN", "0", "COUNT", "1000"), ("KEYS", "*"), ("DBSIZE",),
            ("INFO", "keyspace"), ("FT._LIST",), ("FT.INFO", "vidx"),
            ("FT.SEARCH", "vidx", "*=>[KNN 5 @v $q AS d]", "PARAMS", "2", "q", v, "DIALECT", "2"),
            ("FT.SEARCH", "vidx", "*"), ("FT.DROPINDEX", "vidx", "DD"),
            ("FT.CREATE", "vidx", "SCHEMA", "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM",
             str(self.DIM), "DISTANCE_METRIC", "COSINE"),
            ("FLUSHDB",),
        ]

    def fill_victim(self, conn):
        conn.set("v:str", self.SECRET, ex=3600)
        conn.hset("v:hash", mapping={"f": self.SECRET, "v": vec(1, 0, 0, 0)})
        conn.execute_command("FT.CREATE", "vidx", "PREFIX", "1", "v:", "SCHEMA", "f", "TAG",
                             "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", str(self.DIM),
                             "DISTANCE_METRIC", "COSINE")

    def assert_victim_intact(self, conn):
        self.assertEqual(conn.get("v:str"), self.SECRET)
        self.assertEqual(conn.hget("v:hash", "f"), self.SECRET)
        self.assertIn(b"vidx", conn.execute_command("FT._LIST"))
        reply = conn.execute_command("FT.SEARCH", "vidx", "*=>[KNN 1 @v $q AS d]", "PARAMS",
                                     "2", "q", vec(1, 0, 0, 0), "DIALECT", "2")
        self.assertEqual(reply[:2], [1, b"v:hash"])

    def run_all(self, conn):
        """Every command's reply (or error text), in order."""
        out = []
        for cmd in self.commands():
            try:
                out.append((cmd[0], repr(conn.execute_command(*cmd)).encode()))
            except (redis.exceptions.ResponseError, redis.exceptions.AuthenticationError) as e:
                out.append((cmd[0], b"ERROR " + str(e).encode()))
        return out

    def test_every_data_command_in_every_state(self):
        admin = self.server.admin()
        new_org = lambda org: pairs(admin.execute_command("SEALCACHE.CREATEORG", org,
                                                          self.DIM))["token"]
        victim_token = new_org("victim")
        victim = self.connect("victim", victim_token)
        self.fill_victim(victim)
        other_token = new_org("other")

        states = {}
        states["none"] = redis.Redis(port=self.server.port)
        states["other org"] = self.connect("other", other_token)
        states["admin"] = self.connect("admin", self.server.admin_token)
        issued = pairs(admin.execute_command("SEALCACHE.ISSUETOKEN", "victim"))
        states["revoked token"] = self.connect("victim", issued["token"])
        admin.execute_command("SEALCACHE.REVOKETOKEN", "victim", issued["token_id"])
        extra_admin = pairs(admin.execute_command("SEALCACHE.ISSUETOKEN", ""))
        states["revoked admin token"] = self.connect("admin", extra_admin["token"])
        admin.execute_command("SEALCACHE.REVOKETOKEN", "", extra_admin["token_id"])
        gone_token = new_org("gone")
        states["dropped org"] = self.connect("gone", gone_token)
        self.fill_victim(states["dropped org"])
        admin.execute_command("SEALCACHE.DROPORG", "gone")
        again_token = new_org("again")
        states["re-created org"] = self.connect("again", again_token)
        admin.execute_command("SEALCACHE.DROPORG", "again")
        successor = self.connect("again", new_org("again"))
        self.fill_victim(successor)

        refused = {"none": "Authentication required", "revoked token": "Authentication required",
                   "revoked admin token": "Authentication required",
                   "dropped org": "Authentication required",
                   "re-created org": "Authentication required", "admin": "no permissions"}
        for state, conn in states.items():
            with self.subTest(state=state):
                for name, reply in self.run_all(conn):
                    self.assertNotIn(self.SECRET, reply, (state, name))
                    self.assertNotIn(b"v:hash", reply, (state, name))
                    if state in refused:
                        if name == "INFO":
                            continue  # INFO answers a server section list without keyspace
                        self.assertIn(refused[state].encode(), reply, (state, name))
        self.assert_victim_intact(victim)
        self.assert_victim_intact(successor)
        # The own org's session does everything, FLUSHDB last, to its own org only.
        own = self.run_all(victim)
        self.assertIn(b"victim-secret", dict(own)["GET"])
        self.assertEqual(victim.dbsize(), 0)
        self.assert_victim_intact(successor)


class Transactions(TwoOrgs):
    """MULTI/EXEC: the queued writes of one EXEC are one atomic write."""

    DIM = 8
    KEYS = ["tx:k%d" % i for i in range(8)]

    def exec_all(self, r, value):
        p = r.pipeline(transaction=True)
        for k in self.KEYS:
            p.set(k, value)
        p.hset("tx:h", "v", value)
        return p.execute()

    def test_no_reader_sees_part_of_an_exec(self):
        writer, reader = self.org("acme"), self.org("acme")
        done = threading.Event()
        errors = []

        def write():
            try:
                for i in range(300):
                    self.exec_all(writer, str(i))
            except Exception as e:  # noqa: BLE001 - reported by the test thread
                errors.append(e)
            finally:
                done.set()

        t = threading.Thread(target=write)
        t.start()
        reads, torn = 0, []
        while not done.is_set():
            p = reader.pipeline(transaction=False)
            p.mget(self.KEYS)
            values = p.execute()[0]
            reads += 1
            if len(set(values)) != 1:
                torn.append(values)
        t.join()
        self.assertEqual(errors, [])
        self.assertEqual(torn[:3], [])
        self.assertGreater(reads, 20)
        self.assertEqual(reader.mget(self.KEYS), [b"299"] * len(self.KEYS))
        self.assertEqual(reader.hget("tx:h", "v"), b"299")

    def test_an_exec_survives_a_kill_whole_or_not_at_all(self):
        r = self.org("globex")
        acked = self.kill_while_writing(lambda i: self.exec_all(r, "v%d" % i))
        self.assertGreater(acked, 0)
        last = acked - 1
        r = self.org("globex")
        values = r.mget(self.KEYS)
        self.assertEqual(len(set(values)), 1, values)
        # Every acknowledged EXEC survives; one in flight at the kill may too.
        self.assertIn(int(values[0][1:]), (last, last + 1))
        self.assertEqual(r.hget("tx:h", "v"), values[0])

    def test_an_exec_reads_its_own_writes_and_its_vectors_are_searchable_after_it(self):
        r = self.org("acme")
        r.execute_command("FT.CREATE", "txidx", "ON", "HASH", "PREFIX", "1", "txdoc:", "SCHEMA",
                          "t", "TAG", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM",
                          str(self.DIM), "DISTANCE_METRIC", "COSINE")
        p = r.pipeline(transaction=True)
        p.set("tx:x", "1")
        p.get("tx:x")
        p.hset("txdoc:1", mapping={"v": vec(*unit(3)), "t": "a"})
        p.hget("txdoc:1", "t")
        p.expire("tx:x", 100)
        p.ttl("tx:x")
        p.delete("tx:x")
        p.exists("tx:x")
        p.get("tx:x")
        self.assertEqual(p.execute(), [True, b"1", 2, b"a", True, 100, 1, 0, None])
        reply = r.execute_command("FT.SEARCH", "txidx", "*=>[KNN 1 @v $q AS d]", "PARAMS", "2",
                                  "q", vec(*unit(3)), "DIALECT", "2")
        self.assertEqual(reply[:2], [1, b"txdoc:1"])
        self.assertEqual(r.execute_command("FT.SEARCH", "txidx", "@t:{a}", "NOCONTENT"),
                         [1, b"txdoc:1"])
        # Removed in a transaction: gone from the search as well.
        p = r.pipeline(transaction=True)
        p.delete("txdoc:1")
        p.execute()
        self.assertEqual(r.execute_command("FT.SEARCH", "txidx", "@t:{a}", "NOCONTENT"), [0])

    def test_pipelined_entry_commands_answer_in_order_each_seeing_the_ones_before(self):
        """Requests that arrive in one packet, outside MULTI: each answers in order, as if
        it ran alone, and sees the writes before it."""
        auth = b"AUTH acme " + self.tokens["acme"] + b"\r\n"
        reply = raw(self.server.port, auth + b"SET tx:p 1\r\nGET tx:p\r\nHSET tx:p f v\r\n"
                    b"SET tx:p 2 XX GET\r\nDEL tx:p\r\nGET tx:p\r\nSET tx:p 3 NX\r\n"
                    b"EXPIRE tx:p 100\r\nTTL tx:p\r\nHSET tx:q f v\r\nHGET tx:q f\r\n"
                    b"DBSIZE\r\nMGET tx:p tx:q\r\nQUIT\r\n")
        lines = reply.split(b"\r\n")
        self.assertEqual(lines[:16], [b"+OK", b"+OK", b"$1", b"1",
                                      b"-WRONGTYPE Operation against a key holding the wrong kind "
                                      b"of value", b"$1", b"1", b":1", b"$-1", b"+OK", b":1",
                                      b":100", b":1", b"$1", b"v", lines[15]])
        self.assertRegex(lines[15], rb"^:[0-9]+$")  # DBSIZE
        self.assertEqual(lines[16:], [b"*2", b"$1", b"3", b"$-1", b"+OK", b""])

    def test_a_transaction_is_bounded_like_one_request(self):
        """What MULTI queues is held until EXEC: at most max_frame_bytes (16 MiB by default)
        of arguments, past which the transaction is discarded (and its queue freed)."""
        auth = b"AUTH acme " + self.tokens["acme"] + b"\r\n"
        value = b"v" * 1_000_000
        sets = b"".join(b"*3\r\n$3\r\nSET\r\n$7\r\ntx:b%03d\r\n$%d\r\n%s\r\n"
                        % (i, len(value), value) for i in range(18))
        reply = raw(self.server.port, auth + b"MULTI\r\n" + sets + b"EXEC\r\nGET tx:b000\r\n",
                    until=b"$-1\r\n")
        self.assertEqual(reply, b"+OK\r\n+OK\r\n" + b"+QUEUED\r\n" * 16 +
                         b"-ERR the commands queued since MULTI exceed 16777216 bytes "
                         b"(max_frame_bytes): the transaction is discarded\r\n+QUEUED\r\n"
                         b"-EXECABORT Transaction discarded because of previous errors.\r\n"
                         b"$-1\r\n")

    def test_commands_that_are_not_entry_writes_are_refused_inside_multi(self):
        auth = b"AUTH acme " + self.tokens["acme"] + b"\r\n"
        for command in (b"FLUSHDB", b"FT.CREATE i ON HASH SCHEMA t TAG", b"FT.DROPINDEX i",
                        b"AUTH acme x"):
            reply = raw(self.server.port, auth + b"MULTI\r\nSET tx:r 1\r\n" + command +
                        b"\r\nEXEC\r\nGET tx:r\r\n", until=b"$-1\r\n")
            self.assertEqual(reply, b"+OK\r\n+OK\r\n+QUEUED\r\n"
                                    b"-ERR Command not allowed inside a transaction\r\n"
                                    b"-EXECABORT Transaction discarded because of previous "
                                    b"errors.\r\n$-1\r\n", command)


class NodeClients(unittest.TestCase):
    """node-redis 4.7 and 6, ioredis 6 and @langchain/redis's RedisVectorStore (Node 20, npm
    packages pinned by tests/resp/node/package-lock.json, installed by tools/setup.sh)."""

    NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.token = pairs(cls.server.admin().execute_command("SEALCACHE.CREATEORG", "nodeorg",
                                                             8))["token"].decode()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_node_clients_and_langchain_vector_store(self):
        if not os.path.isdir(os.path.join(self.NODE_DIR, "node_modules")):
            self.fail("npm packages missing: run tools/setup.sh (npm ci in tests/resp/node)")
        env = dict(os.environ, SEALCACHE_RESP_PORT=str(self.server.port),
                   SEALCACHE_ORG="nodeorg", SEALCACHE_TOKEN=self.token)
        out = subprocess.run(["node", "clients_test.mjs"], cwd=self.NODE_DIR, env=env,
                             capture_output=True, text=True, timeout=120)
        sys.stdout.write(out.stdout)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for suite in ("nodeRedis4", "nodeRedisCurrent", "ioredis", "langchainVectorStore"):
            self.assertIn("ok " + suite, out.stdout)


def main():
    """Runs the tests of the script run (this one or another that imports it) against the
    sealcached given as --sealcached PATH."""
    global SEALCACHED
    parser = argparse.ArgumentParser()
    parser.add_argument("--sealcached", required=True)
    args, rest = parser.parse_known_args()
    SEALCACHED = args.sealcached
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()

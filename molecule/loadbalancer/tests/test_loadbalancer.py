"""Role loadbalancer in front of two stand-in app hosts (files/backend.py).
In file order, as an operator meets it: check mode on the fresh host changes
nothing; the role serves HTTPS with a certificate a client verifies for the
public name, redirects HTTP, tells the app the request was https, keeps a
browser on one app host, passes websockets, takes a stopped app host out
without a failed request; a rerun changes nothing; a certificate that does
not fit is refused before any change, and a good one is served without its
key ever reaching the output."""

from __future__ import annotations

import json

HOST = "chat.lab.test"
PEM = f"/etc/haproxy/chainlit-deploy/{HOST}.pem"
CA = "/root/lb-ca.pem"
# Requests from inside the instance through the load balancer; prints JSON.
CLIENT = r"""
import http.client, json, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
out = []
for step in json.loads(sys.argv[2]):
    if step.get("upgrade"):
        tcp = socket.create_connection((HOST, 443), timeout=5)
        raw = ctx.wrap_socket(tcp, server_hostname=HOST)
        raw.sendall(b"GET /ws/socket.io/ HTTP/1.1\r\nHost: " + HOST.encode()
                    + b"\r\nUpgrade: websocket\r\nConnection: Upgrade"
                    + b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                    + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += raw.recv(1)
        raw.sendall(b"ping")
        out.append({"status": int(head.split()[1]), "echo": raw.recv(64).decode()})
        continue
    if step.get("plain"):
        c = http.client.HTTPConnection(HOST, 80, timeout=5)
    else:
        c = http.client.HTTPSConnection(HOST, 443, context=ctx, timeout=5)
    headers = {"Cookie": step["cookie"]} if step.get("cookie") else {}
    headers.update(step.get("headers", {}))
    try:
        c.request("GET", step.get("path", "/"), headers=headers)
        r = c.getresponse()
        body = r.read().decode()
        out.append({"status": r.status, "location": r.getheader("Location"),
                    "cookie": r.getheader("Set-Cookie"),
                    "json": json.loads(body) if body.startswith("{") else None})
    except Exception as e:
        out.append({"status": 0, "error": repr(e)})
print(json.dumps(out))
""".replace("HOST", repr(HOST))


def requests(host, steps: list[dict]) -> list[dict]:
    quoted = json.dumps(steps).replace("'", "'\"'\"'")
    return json.loads(host.check_output(f"python3 - {CA} '{quoted}' <<'PY'\n{CLIENT}\nPY"))


def trust_served_certificate(host) -> None:
    """The client trusts exactly the certificate HAProxy serves."""
    host.run_expect([0], f"openssl x509 -in {PEM} -out {CA}")


def config_sum(host) -> str:
    return host.check_output("sha256sum /etc/haproxy/haproxy.cfg")


def test_check_mode_on_the_fresh_host_changes_nothing(host, run_playbook):
    result = run_playbook("converge.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert not host.package("haproxy").is_installed
    assert not host.file(PEM).exists


def test_https_is_served_with_a_certificate_for_the_public_name(host, run_playbook):
    result = run_playbook()
    assert result.returncode == 0, result.stdout
    trust_served_certificate(host)
    (answer,) = requests(host, [{"path": "/"}])
    assert answer["status"] == 200, answer
    assert answer["json"]["server"] in ("app1", "app2")
    # The key is readable by HAProxy's group only.
    pem = host.file(PEM)
    assert (pem.user, pem.group, pem.mode) == ("root", "haproxy", 0o640)


def test_http_is_redirected_to_https(host):
    (answer,) = requests(host, [{"plain": True, "path": "/login?next=x"}])
    assert answer["status"] == 301
    assert answer["location"] == f"https://{HOST}/login?next=x"


def test_the_app_is_told_the_request_was_https_whatever_the_client_claims(host):
    (answer,) = requests(host, [{"headers": {"X-Forwarded-Proto": "http"}}])
    # HAProxy sends header names in lower case.
    headers = {k.lower(): v for k, v in answer["json"]["headers"].items()}
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == HOST
    assert headers["x-forwarded-for"] == "127.0.0.1"


def test_a_browser_sticks_to_one_app_host_and_new_ones_are_spread(host):
    fresh = requests(host, [{} for _ in range(6)])
    assert {a["json"]["server"] for a in fresh} == {"app1", "app2"}
    cookie = fresh[0]["cookie"].split(";")[0]
    assert "Secure" in fresh[0]["cookie"] and "HttpOnly" in fresh[0]["cookie"]
    sticky = requests(host, [{"cookie": cookie} for _ in range(10)])
    assert {a["json"]["server"] for a in sticky} == {fresh[0]["json"]["server"]}


def test_websockets_pass(host):
    (answer,) = requests(host, [{"upgrade": True}])
    assert answer["status"] == 101
    assert answer["echo"].endswith(":ping")


def test_a_stopped_app_host_is_taken_out_without_a_failed_request(host):
    """app1 stops: requests stuck to it go to app2, none fails, also before
    the health check notices; once app1 is back it gets new browsers again."""
    host.run_expect([0], "systemctl stop lb-backend@8701")
    try:
        during = requests(host, [{"cookie": "CHAINLIT_LB=app1"} for _ in range(20)])
        assert [a["status"] for a in during] == [200] * 20, during
        assert {a["json"]["server"] for a in during} == {"app2"}
    finally:
        host.run_expect([0], "systemctl start lb-backend@8701 && sleep 6")
    back = requests(host, [{} for _ in range(6)])
    assert {a["json"]["server"] for a in back} == {"app1", "app2"}


def test_a_rerun_and_check_mode_change_nothing(host, run_playbook, changed_count):
    rerun = run_playbook()
    assert rerun.returncode == 0, rerun.stdout
    assert changed_count(rerun) == 0, rerun.stdout
    check = run_playbook("converge.yml", None, "--check", "--diff")
    assert check.returncode == 0, check.stdout
    assert changed_count(check) == 0, check.stdout


def test_a_certificate_that_does_not_fit_is_refused_before_any_change(
    host, run_playbook, make_pair
):
    before = (config_sum(host), host.check_output(f"sha256sum {PEM}"))
    good_cert, _ = make_pair(HOST)
    _, other_key = make_pair(HOST)
    expired = make_pair(HOST, days=-1)
    cases = {
        "is not the key of loadbalancer_tls_certificate": (good_cert, other_key),
        "loadbalancer_tls_certificate expired on": expired,
        f"not for {HOST}": make_pair("other.example.com"),
        "Give both": (good_cert, ""),
    }
    for message, (cert, key) in cases.items():
        result = run_playbook(
            "converge.yml",
            {"loadbalancer_tls_certificate": cert, "loadbalancer_tls_private_key": key},
        )
        assert result.returncode != 0
        assert message in " ".join(result.stdout.split()), result.stdout
        if key:
            assert key.splitlines()[1] not in result.stdout
    none = run_playbook("converge.yml", {"loadbalancer_backends": []})
    assert none.returncode != 0
    assert "The load balancer has no app hosts" in " ".join(none.stdout.split())
    assert (config_sum(host), host.check_output(f"sha256sum {PEM}")) == before


def test_a_given_certificate_is_served_and_its_key_never_printed(host, run_playbook, make_pair):
    cert, key = make_pair(HOST)
    result = run_playbook(
        "converge.yml",
        {"loadbalancer_tls_certificate": cert, "loadbalancer_tls_private_key": key},
        "-vvv",
    )
    assert result.returncode == 0, result.stdout
    for line in key.splitlines()[1:-1]:
        assert line not in result.stdout
    trust_served_certificate(host)
    served = host.check_output(
        f"echo | openssl s_client -connect 127.0.0.1:443 -servername {HOST} 2>/dev/null "
        "| openssl x509 -outform PEM"
    )
    assert served.strip() == cert.strip()
    (answer,) = requests(host, [{}])
    assert answer["status"] == 200

"""Structured JSON logs: one line per request with its id when access_log is on, errors always,
and no key, prompt or secret ever appears (captured during requests that carry them)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from llmrelay.config import LoggingConfig
from llmrelay.errors import ProviderUnavailableError
from llmrelay.ops.logging import HANDLER_NAME, configure_logging, redact
from llmrelay.testing import FakeProvider

from .conftest import MASTER, ops_config, serve_file, write_config

SECRET_PROMPT = "my card is 4111 1111 1111 1111 and my key is sk-proj-SECRETabcdef0123456789xyz"
UPSTREAM_KEY = "sk-ant-api03-UPSTREAMSECRET0123456789abcdef"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(LoggingConfig(level="info", format="json", access_log=True), stream)
    yield stream
    logger = logging.getLogger("llmrelay")
    for h in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(h)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_redact_covers_the_credential_shapes() -> None:
    for secret in ("Bearer abcdefghijklmnop123", "sk-relay-Ab_cd-EFghij_klmnopQRSTuvwx", "sk-proj-abc123DEF456ghi789",
                   "AIzaSyA1234567890abcdefghijklmnopqrstu", 'api_key="hunter2hunter2"', "x-api-key: zzzzyyyyxxxx"):
        out = redact(f"before {secret} after")
        assert "[REDACTED]" in out and out.startswith("before ")
        tail = secret.split()[-1].split("=")[-1].strip('"')
        assert tail not in out


async def test_request_logs_are_json_with_ids_and_no_secrets(tmp_path: Path, config_path: Path,
                                                             captured: io.StringIO) -> None:
    # No retries: the scripted upstream failure reaches the caller.
    cfg = ops_config(tmp_path, logging={"access_log": True}, routing={"retries": 0})
    write_config(config_path, cfg)
    with serve_file(config_path, watch_interval_s=3600) as gw:
        fake = gw.relay.services.providers["fake"]
        assert isinstance(fake, FakeProvider)
        # An upstream error whose text carries a credential, as some providers echo them.
        fake.script(["fine", ProviderUnavailableError(f"upstream down (key {UPSTREAM_KEY} rejected)", provider="fake")])
        headers = {"Authorization": f"Bearer {MASTER}"}
        ids = []
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                body = {"model": "m", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
                async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers) as r:
                    ids.append(r.headers["x-llmrelay-request-id"])
            bad = {"Authorization": "Bearer sk-relay-WRONGkey0123456789abcdefgh"}
            async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bad) as r:
                assert r.status == 401
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "llmrelay.access"]
    by_id = {line["request_id"]: line for line in access}
    assert set(ids) <= set(by_id)
    ok, failed = by_id[ids[0]], by_id[ids[1]]
    assert ok["level"] == "info" and ok["status"] == "ok" and ok["model"] == "m" and ok["output_tokens"] > 0
    assert failed["level"] == "error" and failed["http_status"] == 503
    assert "[REDACTED]" in failed["error"]
    for secret in (MASTER, UPSTREAM_KEY, "SECRETabcdef", "4111 1111", "my card is", "WRONGkey"):
        assert secret not in text


async def test_errors_are_logged_even_without_access_log(tmp_path: Path, config_path: Path) -> None:
    write_config(config_path, ops_config(tmp_path, routing={"retries": 0}))
    stream = io.StringIO()
    configure_logging(LoggingConfig(access_log=False), stream)
    try:
        with serve_file(config_path, watch_interval_s=3600) as gw:
            fake = gw.relay.services.providers["fake"]
            assert isinstance(fake, FakeProvider)
            fake.script(["fine", ProviderUnavailableError("down", provider="fake")])
            async with aiohttp.ClientSession() as http:
                for _ in range(2):
                    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
                    async with http.post(f"{gw.url}/v1/chat/completions", json=body,
                                         headers={"Authorization": f"Bearer {MASTER}"}) as r:
                        await r.read()
    finally:
        logger = logging.getLogger("llmrelay")
        for h in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
            logger.removeHandler(h)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    access = [json.loads(x) for x in stream.getvalue().splitlines() if '"llmrelay.access"' in x]
    assert [a["status"] for a in access] == ["error"]

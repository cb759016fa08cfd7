"""Schema fuzzing of the server with schemathesis: bodies valid and invalid by the server's own OpenAPI schema,
sent over loopback to SmolLM2. Every answer is a 2xx or a 4xx in OpenAI's error shape: never a 5xx, never a
dropped connection."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tokensieve.serve.server import ServeConfig, ServerThread, build_app

pytestmark = pytest.mark.real
MODEL = "smollm2-135m"
EXAMPLES = 80  # per operation and generation mode: 320 in all (the slow tier; CI runs it in about 70 s)
SMOKE = 12  # the default tier's share of the same run
TOKEN_CAP = 4  # decoding is not what is under test: a valid request decodes at most this many tokens


@pytest.fixture(scope="module")
def server():
    app = build_app(ServeConfig(model=MODEL, max_batch=4, default_max_tokens=TOKEN_CAP))
    with ServerThread(app) as running:
        yield running
    app.state.engine.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


def capped(body):
    """The body with a large token limit (an int, or a float pydantic takes as one) lowered to TOKEN_CAP. An
    invalid limit, negative or zero, still reaches the server."""
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > TOKEN_CAP:
                body[key] = TOKEN_CAP
    return body


@pytest.mark.parametrize("examples", [SMOKE, pytest.param(EXAMPLES, marks=pytest.mark.slow)])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_every_body_gets_a_2xx_or_an_openai_4xx(server, api_schema, path, mode, examples):
    statuses = []

    @given(api_schema[path]["POST"].as_strategy(generation_mode=mode), st.sampled_from([True, True, True, False]))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case, served_model):
        case.body = capped(case.body)
        if served_model and isinstance(case.body, dict):  # else nearly every body is a 404 for its model name
            case.body["model"] = MODEL
        response = case.call(base_url=server.url, timeout=120)
        statuses.append(response.status_code)
        assert response.status_code < 500, (response.status_code, response.text[:300], case.body)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["message"], str) and error["message"] and "\n" not in error["message"]
            assert set(error) == {"message", "type", "param", "code"}, error

    fuzz()
    if mode == GenerationMode.POSITIVE:  # the model really ran: most valid bodies were answered
        assert statuses.count(200) >= examples // 4, Counter(statuses)

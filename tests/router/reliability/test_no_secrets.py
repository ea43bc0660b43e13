"""No API key, prompt or completion in a real server's logs, metrics or errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    openai_policy,
    router_process,
    serve,
    write_policy,
)

CLIENT_KEY = "sk-client-SECRET-91c0"
WRONG_KEY = "sk-wrong-SECRET-0000"
UPSTREAM_KEY = "sk-upstream-SECRET-5b21"
PROMPT = "PROMPT-SECRET-c4d2 please summarize"
COMPLETION = "COMPLETION-SECRET-7f3a and more words"
SECRETS = (CLIENT_KEY, WRONG_KEY, UPSTREAM_KEY, "PROMPT-SECRET", "COMPLETION-SECRET")


def test_secrets_never_reach_logs_metrics_or_error_bodies(tmp_path: Path) -> None:
    script = UpstreamScript(content=COMPLETION)
    with serve(fake_openai_upstream(script)) as upstream:
        text = openai_policy(upstream).replace(
            "    base_url:", "    api_key: ${UPSTREAM_KEY}\n    base_url:", 1
        )
        policy = write_policy(tmp_path, text)
        env = {
            "LLM_ROUTER_POLICY_FILE": str(policy),
            "LLM_ROUTER_API_KEYS": CLIENT_KEY,
            "LLM_ROUTER_LOG_LEVEL": "DEBUG",
            "UPSTREAM_KEY": UPSTREAM_KEY,
        }
        with router_process(tmp_path, env) as router:
            url = router.url + "/v1/chat/completions"
            auth = {"authorization": f"Bearer {CLIENT_KEY}"}
            messages = [{"role": "user", "content": PROMPT}]
            bodies: list[str] = []
            with httpx.Client(timeout=10) as client:
                ok = client.post(
                    url, json={"model": "large", "messages": messages}, headers=auth
                )
                streamed = client.post(
                    url,
                    json={"model": "large", "messages": messages, "stream": True},
                    headers=auth,
                )
                bodies.append(
                    client.post(
                        url,
                        json={"model": "large", "messages": messages},
                        headers={"authorization": f"Bearer {WRONG_KEY}"},
                    ).text
                )
                for bad in (
                    {"model": "nope", "messages": messages},
                    {"model": "large", "messages": [{"role": PROMPT, "content": 1}]},
                    {"model": "large", "messages": messages, "max_tokens": PROMPT},
                ):
                    bodies.append(client.post(url, json=bad, headers=auth).text)
                bodies.append(
                    client.post(url, content=PROMPT.encode() + b"{", headers=auth).text
                )
                script.status = 500
                bodies.append(
                    client.post(
                        url, json={"model": "large", "messages": messages}, headers=auth
                    ).text
                )
                script.status, script.break_after_chunks = 200, 2
                broken = client.post(
                    url,
                    json={"model": "large", "messages": messages, "stream": True},
                    headers=auth,
                ).text
                # The chunks before the break are the client's own completion;
                # the error event after them must not repeat anything.
                error_events = [e for e in broken.split("\n\n") if '"error"' in e]
                bodies.extend(error_events)
                metrics = client.get(router.url + "/metrics").text
            time.sleep(0.2)  # let the last access lines reach the file
            output = router.output()

    assert ok.status_code == 200, ok.text
    assert COMPLETION in ok.text, "the client itself does get the completion"
    assert "COMPLETION-SECRET" in streamed.text
    assert len(script.requests) >= 3, "the upstream was really called"
    assert len(error_events) == 1, broken
    assert '"status":401' in output, "requests were logged at all"
    assert output.count('"request_id"') >= 6
    for secret in SECRETS:
        assert secret not in output, f"{secret} leaked into the process output"
        assert secret not in metrics, f"{secret} leaked into /metrics"
        for body in bodies:
            assert secret not in body, f"{secret} leaked into an error body: {body}"

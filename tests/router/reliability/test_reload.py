"""Hot reload: SIGHUP and file changes swap the policy without dropping requests."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    make_settings,
    openai_policy,
    router_process,
    serve,
    serve_router,
    write_policy,
)
from llm_router.service import RouterService

DEFAULT_YAML = (
    Path(__file__).parents[3] / "services/router/llm_router/policy/default.yaml"
).read_text()


def renamed(name: str) -> str:
    return DEFAULT_YAML.replace("name: embedded-default", f"name: {name}")


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def reloads(service: RouterService, result: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "llm_router_policy_reloads_total", {"result": result}
    )
    return 0.0 if value is None else value


def test_an_invalid_policy_keeps_the_running_one(tmp_path: Path) -> None:
    path = write_policy(tmp_path, renamed("first"))
    service = RouterService.from_settings(make_settings(policy_file=path))
    before = service.generation

    path.write_text(DEFAULT_YAML.replace("provider: simulated", "provider: nope", 1))
    failed = service.reload()
    path.write_text(renamed("second"))
    succeeded = service.reload()

    assert failed is False
    assert succeeded is True
    assert reloads(service, "error") == 1
    assert reloads(service, "ok") == 1
    assert before.policy.name == "first", "a request holding it keeps its policy"
    assert service.policy.name == "second"
    assert service.generation is not before


def test_a_changed_policy_file_is_reloaded(tmp_path: Path) -> None:
    path = write_policy(tmp_path, renamed("first"))
    with serve_router(path) as (url, service):
        time.sleep(0.3)  # let the watcher start
        path.write_text(renamed("second"))

        def reloaded() -> bool:
            return bool(httpx.get(url + "/readyz").json()["policy"] == "second")

        changed = wait_for(reloaded)
        ok = reloads(service, "ok")

    assert changed, "the watcher reloads the file within seconds"
    assert ok == 1


def test_a_slow_stream_survives_a_reload_that_changes_its_upstream(
    tmp_path: Path,
) -> None:
    slow = UpstreamScript(content="a b c d e f g h", chunk_delay_s=0.15)
    other = UpstreamScript(content="from the new upstream")
    with (
        serve(fake_openai_upstream(slow)) as slow_url,
        serve(fake_openai_upstream(other)) as other_url,
    ):
        path = write_policy(tmp_path, openai_policy(slow_url))
        with serve_router(path, reload_watch=False) as (url, service):
            lines: list[str] = []

            def stream() -> None:
                with httpx.stream(
                    "POST",
                    url + "/v1/chat/completions",
                    json={
                        "model": "large",
                        "stream": True,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    timeout=20,
                ) as response:
                    lines.extend(response.iter_lines())

            client = threading.Thread(target=stream)
            client.start()
            assert wait_for(lambda: len(slow.requests) == 1)
            time.sleep(0.3)
            path.write_text(openai_policy(other_url))
            assert service.reload()
            after = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "large", "messages": [{"role": "user", "content": "x"}]},
            )
            client.join(timeout=20)

    events = [line[6:] for line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(
        c["choices"][0]["delta"].get("content", "")
        for c in map(orjson.loads, events[:-1])
        if c.get("choices")
    )
    assert text == "a b c d e f g h", "the stream finished on its old upstream"
    assert after.json()["choices"][0]["message"]["content"] == "from the new upstream"


def test_sighup_reloads_a_real_server_and_keeps_it_on_a_bad_file(
    tmp_path: Path,
) -> None:
    path = write_policy(tmp_path, renamed("first"))
    env = {"LLM_ROUTER_POLICY_FILE": str(path), "LLM_ROUTER_RELOAD_WATCH": "false"}
    with router_process(tmp_path, env) as router:

        def policy_name() -> str:
            return str(httpx.get(router.url + "/readyz").json()["policy"])

        path.write_text(renamed("second"))
        router.process.send_signal(signal.SIGHUP)
        reloaded = wait_for(lambda: policy_name() == "second")

        path.write_text("tiers: [not, a, mapping]\n")
        router.process.send_signal(signal.SIGHUP)
        failed = wait_for(lambda: "policy reload failed" in router.output())
        kept = policy_name()
        metrics = httpx.get(router.url + "/metrics").text
        alive = router.process.poll() is None

    assert reloaded
    assert failed, router.output()[-2000:]
    assert kept == "second"
    assert alive
    assert 'llm_router_policy_reloads_total{result="ok"} 1.0' in metrics
    assert 'llm_router_policy_reloads_total{result="error"} 1.0' in metrics

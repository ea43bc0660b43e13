"""`Retry-After` from an upstream, in either form HTTP allows."""

from __future__ import annotations

import datetime
import email.utils

import pytest

from llm_router.providers.base import parse_retry_after


def test_seconds_are_read_as_given() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-3") == 0.0


def test_an_http_date_becomes_the_seconds_until_it() -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    header = email.utils.format_datetime(soon, usegmt=True)

    assert parse_retry_after(header) == pytest.approx(30, abs=2)


def test_a_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Wed, 99 Foo 2015"])
def test_anything_else_is_no_hint(value: str | None) -> None:
    assert parse_retry_after(value) is None

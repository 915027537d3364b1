"""Property tests: arbitrary command arguments and callback data never crash a handler,
and data this bot did not sign never passes validation."""
from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.clock import ManualClock
from bot.callbacks import (
    CallbackSigner,
    ForgedCallback,
    JobsAction,
    JobsCb,
    PingAction,
    PingCb,
    StatusAction,
    StatusCb,
)
from bot.console import ConsoleChat

FAMILIES = (StatusCb, JobsCb, PingCb)
SIGNER = CallbackSigner(b"property-test-key", ManualClock(2_000_000_000))
job_ids = st.text(st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), max_size=20)


@given(st.text(max_size=80))
def test_arbitrary_strings_never_pass_as_callback_data(raw):
    for family in FAMILIES:
        with pytest.raises(ForgedCallback):
            SIGNER.unpack(family, raw)


@given(st.sampled_from([StatusCb(action=StatusAction.REFRESH), PingCb(action=PingAction.RERUN)])
       | st.builds(JobsCb, action=st.sampled_from(JobsAction), job=job_ids, ts=st.integers(0, 2**31)),
       st.data())
def test_signed_buttons_round_trip_and_any_tampering_is_caught(cb, data):
    try:
        packed = SIGNER.pack(cb)
    except ValueError:
        return  # too long to be a button: never issued
    assert len(packed.encode()) <= 64
    assert SIGNER.unpack(type(cb), packed) == cb
    i = data.draw(st.integers(0, len(packed) - 1))
    replacement = data.draw(st.characters(blacklist_categories=("Cs",)).filter(lambda c: c != packed[i]))
    tampered = packed[:i] + replacement + packed[i + 1:]
    with pytest.raises(ForgedCallback):
        SIGNER.unpack(type(cb), tampered)
    other = CallbackSigner(b"another-deployment")
    with pytest.raises(ForgedCallback):
        other.unpack(type(cb), packed)


@pytest.fixture
async def console(console_ctx):
    chat = ConsoleChat(console_ctx, out=io.StringIO(), interactive=True)
    yield chat, console_ctx.probe
    await chat.close()


hostile = st.text(st.characters(blacklist_categories=("Cs",)), max_size=220) | st.sampled_from(
    ["<b>", "&amp;", "\u202e\u200f", "🚀" * 100, "x" * 300, "@tokenwatch_console", "\x00"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["/start", "/help", "/status", "/jobs", "/nope"]), args=hostile)
async def test_any_command_arguments_get_an_answer_and_no_error(console, command, args):
    chat, _probe = console
    before = chat.session.calls.get("SendMessage", 0)
    await chat.handle_line(f"{command} {args}")
    assert chat.session.calls.get("SendMessage", 0) == before + 1
    assert chat.dp["parts"].errors == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=hostile | st.builds(lambda s: "jb:run:pipeline.probe:" + s, hostile))
async def test_forged_presses_are_answered_and_change_nothing(console, data):
    chat, probe = console
    before = chat.session.calls.get("AnswerCallbackQuery", 0)
    await chat.press_data(data[:64])
    assert chat.session.calls.get("AnswerCallbackQuery", 0) == before + 1
    assert chat.session.calls.get("SendMessage", 0) == 0 and chat.session.calls.get("EditMessageText", 0) == 0
    assert probe.runs == 0 and chat.dp["parts"].errors == 0

"""/graph [preset|metric] [range]: a picture of the metric store, with buttons to switch.

    /graph                       -> processing, last 6h
    /graph health 24h            -> a preset over a range (1h, 6h, 24h, 7d)
    /graph tokenwatch_db_ping_seconds 1h   -> one metric (an unknown name gets the closest ones)

The data is read on the loop (async queries), the drawing happens in the render worker's
process pool (``charts.worker``); one render per chat at a time, a repeat is answered. The
photo goes out through the outbox with a caption of the key numbers. Every button press is
re-checked against the presser's role by the role gate (``flags_for(GRAPH)``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from app.scheduler import JobSpec
from bot.callbacks import CallbackSigner, GraphCb, Signed
from bot.context import BotContext
from bot.commands import CommandSpec
from bot.routers.common import flags_for
from bot.routers.dashboard import DashboardKeeper, keeper_of
from bot.views.graph import (
    graph_caption,
    graph_keyboard,
    unknown_range_text,
    unknown_target_text,
    usage_text,
)
from charts.data import NotEnoughData, fetch_chart
from charts.presets import Preset, closest_names, get_preset, metric_preset
from charts.ranges import DEFAULT_RANGE, parse_range
from charts.worker import AlreadyDrawing, RenderBusy, RenderWorker
from delivery.html import esc

log = logging.getLogger(__name__)

GRAPH = CommandSpec("graph", "Pictures: processing, activation, health, api, alerts, flow, or a metric",
                    "/graph health 24h")
COMMANDS = [GRAPH]
DEFAULT_PRESET = "processing"
ALREADY_DRAWING = "⏳ Already drawing your graph; it will arrive in a moment."
BUSY = "Busy drawing other graphs; try again in a few seconds."


# --- the running parts -------------------------------------------------------------------------
@dataclass
class Pictures:
    """/graph's render worker and /dashboard's keeper; ``jobs()`` for the scheduler."""

    worker: RenderWorker
    dashboards: DashboardKeeper

    def jobs(self) -> list[JobSpec]:
        return self.dashboards.jobs()

    async def stop(self) -> None:
        await self.worker.stop()


def worker_of(ctx: BotContext) -> RenderWorker:
    """The context's render worker, made on first use."""
    if ctx.render_worker is None:
        s = ctx.settings
        ctx.render_worker = RenderWorker(processes=s.graph_render_processes, max_queue=s.graph_render_queue)
    return ctx.render_worker


async def build_pictures(ctx: BotContext, *, warm_up: bool = True) -> Pictures:
    """Called by the composition root: ``ctx.scheduler.add_all((await build_pictures(ctx)).jobs())``."""
    worker = worker_of(ctx)
    if warm_up:
        await worker.start()
    return Pictures(worker=worker, dashboards=keeper_of(ctx))


# --- parsing -----------------------------------------------------------------------------------
def parse_graph_args(args: str | None) -> tuple[Preset, str] | str:
    """(preset, range) from the command's arguments, or the HTML text to answer instead."""
    words = (args or "").split()
    if len(words) > 2:
        return usage_text()
    target, span = DEFAULT_PRESET, DEFAULT_RANGE
    for word in words:
        rng = parse_range(word)
        if rng is not None:
            span = rng
        elif word[:1].isdigit():
            return unknown_range_text(word)
        else:
            target = word
    preset = get_preset(target) or metric_preset(target)
    if preset is None:
        return unknown_target_text(target, closest_names(target))
    return preset, span


# --- drawing -----------------------------------------------------------------------------------
async def draw_and_send(ctx: BotContext, chat_id: int, preset: Preset, span: str, signer: CallbackSigner,
                        key: str) -> str | None:
    """Read, draw and queue the photo; returns the text to answer instead, if any.
    Raises ``AlreadyDrawing`` / ``RenderBusy`` when the chat's slot or the queue is taken."""
    if ctx.metrics is None:
        return "Metrics are not collected in this process, so there is nothing to draw."
    if ctx.outbox is None:
        return "Delivery is not running in this process; no picture can be sent."
    worker = worker_of(ctx)
    with worker.slot(chat_id):
        data = await fetch_chart(ctx.metrics, preset, span, ctx.clock.time(), settings=ctx.settings)
        if isinstance(data, NotEnoughData):
            return esc(f"{preset.title} over {span}: {data.message()}")
        try:
            picture = await worker.draw(data)
        except Exception:  # noqa: BLE001 - a failed drawing is reported, never takes the bot down
            log.exception("drawing %s %s failed", preset.name, span)
            return "Could not draw this graph; the error has been logged."
    await ctx.outbox.enqueue(chat_id, graph_caption(data), key=key, photo=picture.png,
                             reply_markup=graph_keyboard(signer, preset.name, span))
    return None


def make_router() -> Router:
    router = Router(name="graph")

    @router.message(Command(GRAPH.name), flags=flags_for(GRAPH))
    async def graph(message: Message, command: CommandObject, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        parsed = parse_graph_args(command.args)
        if isinstance(parsed, str):
            await message.answer(parsed)
            return
        preset, span = parsed
        try:
            answer = await draw_and_send(ctx, message.chat.id, preset, span, cb_signer,
                                         key=f"graph:{message.chat.id}:{message.message_id}")
        except AlreadyDrawing:
            answer = ALREADY_DRAWING
        except RenderBusy:
            answer = BUSY
        if answer is not None:
            await message.answer(answer)

    @router.callback_query(Signed(GraphCb), flags=flags_for(GRAPH))
    async def switch(query: CallbackQuery, callback_data: GraphCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        if not isinstance(query.message, Message):
            await query.answer("This message is too old; send /graph again.", show_alert=True)
            return
        chat_id = query.message.chat.id
        preset = get_preset(callback_data.target) or metric_preset(callback_data.target)
        span = parse_range(callback_data.span)
        if preset is None or span is None:  # a button from an older version
            await query.answer("This button is out of date; send /graph again.", show_alert=True)
            return
        if worker_of(ctx).is_drawing(chat_id):
            await query.answer(ALREADY_DRAWING)
            return
        await query.answer(f"Drawing {preset.name[:40]} {span}…")
        try:
            answer = await draw_and_send(ctx, chat_id, preset, span, cb_signer, key=f"graph:{chat_id}:cb:{query.id}")
        except (AlreadyDrawing, RenderBusy) as exc:
            answer = ALREADY_DRAWING if isinstance(exc, AlreadyDrawing) else BUSY
        if answer is not None:
            await query.message.answer(answer)

    return router

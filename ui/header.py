"""The strip on top of every page: the AI Trading badge, the kill switch, pipeline health.

A live fragment: it refreshes on its own every few seconds without rerunning the page
under it (so a half-typed form keeps its input).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import fmt, state
from ui.api_client import ApiError


def health_badge(report: dict[str, Any] | None, err: ApiError | None) -> fmt.Badge:
    """The pipeline's health (`GET /v1/health`) as one badge."""
    if err is not None:
        checks = err.details.get("checks") if err.details else None
        bad = ", ".join(f"{name}: {check.get('status')}" for name, check in (checks or {}).items()
                        if isinstance(check, dict) and check.get("status") != "ok")
        return fmt.Badge("Pipeline: DOWN", "red", bad or err.message)
    status = (report or {}).get("status", "unknown")
    if status == "ok":
        return fmt.Badge("Pipeline: ok", "green")
    bad = ", ".join(f"{name}: {check.get('detail') or check.get('status')}"
                    for name, check in ((report or {}).get("checks") or {}).items()
                    if check.get("status") != "ok")
    return fmt.Badge(f"Pipeline: {status}", "orange", bad or None)


def _strip() -> None:
    left, right = st.columns([3, 4], vertical_alignment="center")
    left.markdown("### :material/smart_toy: ai-trader")
    risk = state.read_or_none("/v1/settings/risk")
    try:
        report, problem = state.read("/v1/health"), None
    except ApiError as err:
        if err.status == 401 or err.code == "UNREACHABLE":
            raise
        report, problem = None, err
    with right:
        badges = [fmt.ai_badge(risk), fmt.kill_switch_badge(risk), health_badge(report, problem)]
        cols = st.columns(len(badges))
        for col, badge in zip(cols, badges, strict=True):
            col.badge(badge.label, color=badge.color)
        details = [b.detail for b in badges if b.detail]
        if details:
            st.caption(fmt.escape(" · ".join(details)))


def render_header() -> None:
    """The live header of every page."""
    with st.container(border=True):
        state.live("header", _strip)

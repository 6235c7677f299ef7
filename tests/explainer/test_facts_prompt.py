"""Facts of ideas and decisions, the prompt built from them, and the clean-up of answers."""

from __future__ import annotations

import json

from streams.explainer.facts import decision_subject, explanation_id, idea_subject
from streams.explainer.guard import check_numbers, index_facts
from streams.explainer.prompt import (
    MAX_CHARS,
    SYSTEM,
    TASKS,
    build_prompt,
    clean_text,
    trim_cut_sentence,
)
from tests.explainer import factories as f


def test_idea_facts_carry_levels_confidence_indicators_and_upcoming_events() -> None:
    idea = f.trade_idea()
    subject = idea_subject(f.idea_status(idea), f.bundle(idea))
    assert subject is not None
    facts = subject.facts
    assert (subject.kind, subject.subject_id, subject.account) == ("idea", idea["idea_id"],
                                                                   "paper-1")
    assert facts["stop_distance"] == 6.7  # exact decimal difference, no float noise
    assert facts["take_profit"][0] == {"price": 2398, "distance": 12.8, "reward_to_risk": 1.91}
    assert facts["confidence"]["score"] == 91.3
    assert facts["confidence"]["components"]["components"][0]["name"] == "strategy_match"
    assert facts["indicators"]["rsi_14"] == 38.2
    assert facts["upcoming_events"][0]["time"] == "2026-03-02 11:00 UTC"
    assert facts["upcoming_events"][0]["title"] == "FOMC Rate Decision"
    assert subject.rationale == idea["rationale"]


def test_idea_without_its_bundle_is_explained_from_the_idea_alone() -> None:
    subject = idea_subject(f.idea_status())
    assert subject is not None
    assert "indicators" not in subject.facts
    assert "rationale_bullets" in subject.facts


def test_later_statuses_carry_no_idea_and_give_no_subject() -> None:
    assert idea_subject(f.later_status(f.trade_idea())) is None


def test_decision_facts_count_and_list_the_checks_with_their_values() -> None:
    subject = decision_subject(f.decision())
    checks = subject.facts["checks"]
    assert (checks["total"], checks["passed"], checks["failed"]) == (6, 5, 1)
    watchlist = next(c for c in checks["list"] if c["name"] == "watchlist")
    assert watchlist["code"] == "fail:off_watchlist"
    assert watchlist["values"]["on_watchlist"] == "false"
    assert subject.facts["deterministic_rationale"].startswith("Needs approval")


def test_halt_decision_without_idea_or_checks_has_facts() -> None:
    subject = decision_subject(f.halt_decision())
    assert subject.facts["action"] == "ai_halted"
    assert "checks" not in subject.facts


def test_explanation_ids_are_deterministic_per_subject_kind_and_id() -> None:
    assert explanation_id("idea", "x") == explanation_id("idea", "x")
    assert explanation_id("idea", "x") != explanation_id("decision", "x")
    assert explanation_id("idea", "x") != explanation_id("idea", "y")


def test_prompt_gives_the_task_and_the_facts_as_json_and_no_digits_of_its_own() -> None:
    idea = f.trade_idea()
    subject = idea_subject(f.idea_status(idea), f.bundle(idea))
    assert subject is not None
    prompt = build_prompt(subject)
    system, user = prompt.messages
    assert system == {"role": "system", "content": SYSTEM}
    assert user["content"].startswith(TASKS["idea"])
    assert json.loads(prompt.facts_text) == subject.facts
    assert not any(ch.isdigit() for ch in SYSTEM + "".join(TASKS.values()))


def test_the_scripted_answers_pass_the_guard_against_their_facts() -> None:
    idea = f.trade_idea()
    subject = idea_subject(f.idea_status(idea), f.bundle(idea))
    assert subject is not None
    idea_facts = build_prompt(subject).facts_text
    decision_facts = build_prompt(decision_subject(f.decision(idea))).facts_text
    assert check_numbers(f.IDEA_TEXT, index_facts(idea_facts)).ok
    assert check_numbers(f.DECISION_TEXT, index_facts(decision_facts)).ok
    assert not check_numbers(f.INVENTED_TEXT, index_facts(idea_facts)).ok


def test_clean_text_strips_markdown_and_control_characters_and_caps_length() -> None:
    assert clean_text("**Buy**\n- at `2385.2`\x07 now", "idea") == "Buy at 2385.2 now"
    long = "The gate waited. " * 100
    out = clean_text(long, "decision")
    assert len(out) <= MAX_CHARS["decision"]
    assert out.endswith(".")
    assert len(clean_text("x" * 5000, "idea")) == MAX_CHARS["idea"]


def test_an_answer_cut_by_max_tokens_loses_its_unfinished_sentence() -> None:
    assert trim_cut_sentence("Entry at 2385.2. The stop is at 23") == "Entry at 2385.2."
    assert trim_cut_sentence("no sentence end") == "no sentence end"

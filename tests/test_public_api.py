from __future__ import annotations

import inspect

from pydantic import BaseModel

import gupshup_async as g


def _isort_style(name: str) -> tuple[bool, bool, str]:
    """CONSTANTS, then Classes, then functions: the order ruff's RUF022 keeps."""
    return (not name.isupper(), not name[:1].isupper(), name)


def test_all_is_sorted_and_complete() -> None:
    assert g.__all__ == sorted(g.__all__, key=_isort_style)
    public = {
        name
        for name, value in vars(g).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public | {"__version__"} == set(g.__all__)


def test_every_public_name_has_a_one_sentence_docstring() -> None:
    for name in g.__all__:
        value = getattr(g, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            doc = inspect.getdoc(value)
            assert doc, name
            assert doc.splitlines()[0].endswith("."), name


def test_message_models_match_the_contract() -> None:
    fields: dict[type[BaseModel], list[str]] = {
        g.Text: ["body", "preview_url"],
        g.Image: ["id", "link", "caption"],
        g.Video: ["id", "link", "caption"],
        g.Document: ["id", "link", "caption", "filename"],
        g.Audio: ["id", "link", "voice"],
        g.Sticker: ["id", "link"],
        g.Location: ["latitude", "longitude", "name", "address"],
        g.Contacts: ["contacts"],
        g.Reaction: ["message_id", "emoji"],
        g.ReplyButtons: ["body", "buttons", "header", "footer"],
        g.ListMessage: ["body", "button", "sections", "header", "footer"],
        g.AddressRequest: ["body", "country", "values"],
        g.FlowMessage: [
            "body", "flow_cta", "flow_id", "flow_name", "flow_token", "flow_action",
            "screen", "data", "mode", "header", "footer",
        ],
        g.Template: ["name", "language", "language_policy", "components"],
    }  # fmt: skip
    for model, names in fields.items():
        wire_fields = [n for n, f in model.model_fields.items() if not f.exclude]
        assert wire_fields == names, model.__name__
    assert g.FlowMessage.model_fields["flow_token"].default == "unused"
    assert g.FlowMessage.model_fields["flow_action"].default == "navigate"
    assert g.AddressRequest.model_fields["country"].default == "IN"


def test_client_signature_matches_the_contract() -> None:
    parameters = inspect.signature(g.AsyncGupshupClient).parameters
    assert list(parameters)[:6] == [
        "app_id",
        "token",
        "base_url",
        "timeout",
        "http_client",
        "max_retries",
    ]
    assert parameters["base_url"].default == "https://partner.gupshup.io"
    assert parameters["timeout"].default == 10.0
    assert parameters["base_url"].kind is inspect.Parameter.KEYWORD_ONLY

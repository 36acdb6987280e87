"""The category → alert table is the only place an alert is chosen: every category a raise site in `tls`
names has exactly one alert, and the engine sends exactly that alert (or its TLS 1.2 stand-in)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from outcomes.category import Category
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import failure_of
from tls.alerts import ALERT_OF, ALERT_REASONS, WARNING_OF, AlertDescription, alert_name, wire_alert
from tls.client import ClientConnection
from tls.errors import ProtocolError
from tls.record import Record
from tls.server import ServerConnection

TLS_SOURCES = sorted(p for p in Path(__file__).resolve().parents[2].joinpath("tls").rglob("*.py")
                     if p.name != "alerts.py")
DECIDED_ABOVE_THE_ENGINE = {Category.TIMEOUT, Category.PEER_ALERT, Category.CONNECTION_RESET,
                            Category.CONNECT_BACK_FAILED, Category.SERVED, Category.BAD_REQUEST, Category.SUCCESS}
ALERTS_THE_ENGINE_NAMES_ITSELF = {"CLOSE_NOTIFY", "USER_CANCELED"}  # not refusals: closing and a tolerated warning


def _attributes_of(name: str) -> set[tuple[Path, str]]:
    found = set()
    for path in TLS_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
                found.add((path, node.attr))
    return found


def test_every_category_named_in_tls_has_an_alert() -> None:
    named = {Category[attr] for _, attr in _attributes_of("Category")}
    assert named, "the scan found no Category at all"
    missing = sorted(c.name for c in named if c not in ALERT_OF)
    assert not missing, f"categories raised without an alert in ALERT_OF: {missing}"


def test_the_table_covers_exactly_the_categories_the_engine_can_refuse_with() -> None:
    assert set(ALERT_OF) == set(Category) - DECIDED_ABOVE_THE_ENGINE


def test_no_raise_site_chooses_an_alert() -> None:
    chosen = sorted(f"{path.name}: {attr}" for path, attr in _attributes_of("AlertDescription")
                    if attr not in ALERTS_THE_ENGINE_NAMES_ITSELF)
    assert not chosen, chosen


def test_no_refusal_is_a_warning_level_alert_or_close_notify() -> None:
    assert AlertDescription.CLOSE_NOTIFY not in ALERT_OF.values()
    assert AlertDescription.USER_CANCELED not in ALERT_OF.values()


@pytest.mark.parametrize("category", sorted(ALERT_OF, key=str))
def test_a_protocol_error_carries_its_categorys_alert(category: Category) -> None:
    err = ProtocolError(category, "why")
    assert (err.alert, err.category, err.reason) == (ALERT_OF[category], category, "why")
    assert str(err) == f"{alert_name(err.alert)} ({category}): why"


@pytest.mark.parametrize("category", sorted(DECIDED_ABOVE_THE_ENGINE, key=str))
def test_a_category_without_an_alert_cannot_be_raised(category: Category) -> None:
    with pytest.raises(KeyError):
        ProtocolError(category, "not the engine's to decide")


def test_tls12_gets_a_stand_in_only_for_alerts_tls13_added() -> None:
    assert wire_alert(AlertDescription.CERTIFICATE_REQUIRED, tls12=True) is AlertDescription.HANDSHAKE_FAILURE
    assert wire_alert(AlertDescription.CERTIFICATE_REQUIRED, tls12=False) is AlertDescription.CERTIFICATE_REQUIRED
    for alert in set(ALERT_OF.values()) - {AlertDescription.CERTIFICATE_REQUIRED}:
        assert wire_alert(alert, tls12=True) is alert


def test_alert_names() -> None:
    assert alert_name(48) == "unknown_ca"
    assert alert_name(255) == "alert_255"


def test_a_bug_in_a_handler_is_an_internal_error_refusal_not_an_exception() -> None:
    """An invariant failure (here: a handler that raises KeyError) must not escape `receive_data`: the peer
    gets internal_error, the application a HandshakeFailed in category internal-error, and the engine closes."""
    s = ServerConnection(server_config())

    def broken(record: Record) -> None:
        raise KeyError("invariant")

    s._handle_record = broken  # type: ignore[method-assign]
    s.receive_data(ClientConnection(client_config()).data_to_send())
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.INTERNAL_ERROR, Category.INTERNAL_ERROR)
    assert failure.reason == "internal error: KeyError"
    assert s.data_to_send().endswith(bytes((21, 3, 3, 0, 2, 2, AlertDescription.INTERNAL_ERROR)))
    assert s.closed


def test_the_argued_choices_are_recorded_beside_the_table() -> None:
    """Issue 15's flagged cases each have their reasoning in ALERT_REASONS (printed with -s)."""
    for category, reason in ALERT_REASONS.items():
        assert category in ALERT_OF
        print(f"{category} -> {alert_name(ALERT_OF[category])}: {reason}")
    flagged = {Category.OBSOLETE_GROUP, Category.NO_SHARED_GROUP, Category.WRONG_SIGNATURE_SCHEME,
               Category.BAD_SIGNATURE, Category.UNEXPECTED_MESSAGE, Category.RESOURCE_LIMIT,
               Category.RENEGOTIATION_ATTEMPT, Category.ILLEGAL_PARAMETER}
    assert flagged <= set(ALERT_REASONS)
    assert ALERT_OF[Category.WRONG_SIGNATURE_SCHEME] is AlertDescription.ILLEGAL_PARAMETER
    assert ALERT_OF[Category.BAD_SIGNATURE] is AlertDescription.DECRYPT_ERROR
    assert ALERT_OF[Category.OBSOLETE_GROUP] is AlertDescription.ILLEGAL_PARAMETER


def test_no_renegotiation_is_only_ever_a_warning() -> None:
    """RFC 5246 §7.2.2: no_renegotiation 'is always a warning': it is in WARNING_OF, never a fatal refusal."""
    assert AlertDescription.NO_RENEGOTIATION not in ALERT_OF.values()
    assert WARNING_OF == {Category.RENEGOTIATION_ATTEMPT: AlertDescription.NO_RENEGOTIATION}

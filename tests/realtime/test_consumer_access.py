"""The event socket: JWT on connect, expiry while open, who may subscribe to what.

Every stream kind has an out-of-scope refusal here; a refusal is an ``error`` frame and
the socket stays open (the next message is answered).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.dispatch.models import CommandPost
from apps.incidents.models import Incident, Report
from apps.realtime.errors import CloseCode
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.dispatch import DispatchTaskFactory, TeamFactory, TeamMemberFactory
from tests.factories.incidents import IncidentFactory, ReportFactory, TwoTowns
from tests.realtime.conftest import ask, connected, socket, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Cast:
    tree: TwoTowns
    fengdong_operator: User  # scope: 沣东 and below
    fengxi_operator: User  # scope: 沣西 and below
    responder: User  # no membership; on a team
    citizen: User
    incident: Incident  # in 三桥 (沣东)
    report: Report  # by ``citizen``, in 三桥


@pytest.fixture
def cast(transactional_db: None) -> Cast:
    tree = TwoTowns()
    citizen = CitizenFactory()
    return Cast(
        tree=tree,
        fengdong_operator=StaffUserFactory(region=tree.fengdong),
        fengxi_operator=StaffUserFactory(region=tree.fengxi),
        responder=CitizenFactory(),
        citizen=citizen,
        incident=IncidentFactory(region=tree.sanqiao, status="accepted"),
        report=ReportFactory(region=tree.sanqiao, reporter=citizen),
    )


async def refused(ws: Any, code: str, **message: Any) -> dict[str, Any]:
    answer = await ask(ws, type="subscribe", **message)
    assert answer["type"] == "error", answer
    assert answer["code"] == code, answer
    # the socket stays open and answers the next message
    assert await ask(ws, type="ping", ref="after") == {"type": "pong", "ref": "after"}
    return answer


async def granted(ws: Any, stream: str, **message: Any) -> dict[str, Any]:
    answer = await ask(ws, type="subscribe", stream=stream, **message)
    assert answer["type"] == "subscribed", answer
    return answer


# --- Connecting -----------------------------------------------------------------------------


async def test_a_valid_token_says_hello_with_the_user_and_expiry(cast: Cast) -> None:
    ws = socket(cast.fengdong_operator)
    connected, _ = await ws.connect()
    hello = await ws.receive_json_from()
    assert connected
    assert hello["user_id"] == cast.fengdong_operator.pk
    assert hello["expires_at"].endswith("+08:00")
    await ws.disconnect()


async def test_anonymous_sockets_are_accepted_for_report_tracking() -> None:
    ws = socket()
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_json_from() == {"type": "hello", "user_id": None, "expires_at": None}
    await ws.disconnect()


async def closed_at_connect(ws: Any) -> tuple[dict[str, Any], int]:
    connected, _ = await ws.connect()
    assert connected  # accepted first, so that the application close code reaches the app
    frame = await ws.receive_json_from()
    closed = await ws.receive_output()
    assert closed["type"] == "websocket.close"
    return frame, closed["code"]


async def test_a_forged_token_is_closed_with_4403(cast: Cast) -> None:
    forged = token_for(cast.citizen)[:-4] + "AAAA"
    frame, code = await closed_at_connect(socket(token=forged))
    assert frame["code"] == "token_invalid"
    assert code == CloseCode.TOKEN_INVALID == 4403


async def test_an_expired_token_is_closed_at_connect_with_4403(cast: Cast) -> None:
    token = token_for(cast.citizen)
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        frame, code = await closed_at_connect(socket(token=token))
    assert frame["code"] == "token_invalid"
    assert code == 4403


async def test_an_open_socket_is_closed_with_4401_when_its_token_expires(cast: Cast) -> None:
    # given: a token that expires within a second (the consumer's timer, no test sleep)
    ws = await connected(token=token_for(cast.fengdong_operator, seconds=1))
    await granted(ws, f"region.{cast.tree.fengdong.code}")
    # when the expiry passes, then
    frame = await ws.receive_json_from(timeout=5)
    closed = await ws.receive_output(timeout=5)
    assert frame["type"] == "error"
    assert frame["code"] == "token_expired"
    assert closed == {"type": "websocket.close", "code": CloseCode.NOT_AUTHENTICATED}


async def test_a_user_deactivated_after_connecting_is_closed_on_the_next_subscribe(
    cast: Cast,
) -> None:
    ws = await connected(cast.fengdong_operator)
    await database_sync_to_async(User.objects.filter(pk=cast.fengdong_operator.pk).update)(
        is_active=False
    )
    await ws.send_json_to({"type": "subscribe", "stream": f"user.{cast.fengdong_operator.pk}"})
    assert (await ws.receive_json_from())["code"] == "not_authenticated"
    assert (await ws.receive_output())["code"] == 4401


# --- user.<id> ------------------------------------------------------------------------------


async def test_a_user_may_subscribe_to_their_own_stream_only(cast: Cast) -> None:
    ws = await connected(cast.responder)
    answer = await granted(ws, f"user.{cast.responder.pk}", ref=1)
    assert answer == {
        "type": "subscribed",
        "stream": f"user.{cast.responder.pk}",
        "last_seq": 0,
        "replayed": 0,
        "ref": 1,
    }
    error = await refused(ws, "out_of_scope", stream=f"user.{cast.citizen.pk}", ref="x")
    assert error["stream"] == f"user.{cast.citizen.pk}"
    assert error["ref"] == "x"
    assert error["message"]
    await ws.disconnect()


# --- region.<code> --------------------------------------------------------------------------


async def test_an_operator_subscribes_to_their_region_and_below_not_above_or_beside(
    cast: Cast,
) -> None:
    ws = await connected(cast.fengdong_operator)
    await granted(ws, "region.fengdong")
    await granted(ws, "region.fd-sanqiao")
    await refused(ws, "out_of_scope", stream="region.xixian")  # the ancestor
    await refused(ws, "out_of_scope", stream="region.fengxi")  # the sibling
    await refused(ws, "out_of_scope", stream="region.fx-diaotai")
    await refused(ws, "out_of_scope", stream="region.nowhere")  # unknown looks the same
    await ws.disconnect()


async def test_the_scope_is_resolved_again_on_every_subscribe(cast: Cast) -> None:
    # given: an open socket of the 沣东 operator, who then loses the membership
    ws = await connected(cast.fengdong_operator)
    await granted(ws, "region.fengdong")
    await database_sync_to_async(Membership.objects.filter(user=cast.fengdong_operator).update)(
        is_active=False
    )
    # when / then: the long-lived socket does not keep the old scope
    await refused(ws, "out_of_scope", stream="region.fd-sanqiao")
    await ws.disconnect()


async def test_citizens_have_no_region_scope(cast: Cast) -> None:
    ws = await connected(cast.citizen)
    await refused(ws, "out_of_scope", stream="region.fd-sanqiao")
    await ws.disconnect()


# --- incident.<id> --------------------------------------------------------------------------


async def test_an_incident_in_scope_may_be_followed_one_outside_may_not(cast: Cast) -> None:
    stream = f"incident.{cast.incident.pk}"
    inside = await connected(cast.fengdong_operator)
    await granted(inside, stream)
    outside = await connected(cast.fengxi_operator)
    await refused(outside, "out_of_scope", stream=stream)
    await refused(outside, "out_of_scope", stream="incident.999999")
    await inside.disconnect()
    await outside.disconnect()


async def test_a_member_of_a_team_with_a_live_task_follows_the_incident_from_outside_scope(
    cast: Cast,
) -> None:
    # given: a fengxi team sent to the fengdong incident (no scope over 三桥)
    @database_sync_to_async
    def given() -> Any:
        team = TeamFactory(home_region=cast.tree.diaotai)
        TeamMemberFactory(team=team, user=cast.responder)
        return DispatchTaskFactory(incident=cast.incident, team=team, status="accepted")

    task = await given()
    ws = await connected(cast.responder)
    stream = f"incident.{cast.incident.pk}"
    await granted(ws, stream)
    await ws.send_json_to({"type": "unsubscribe", "stream": stream})
    assert (await ws.receive_json_from())["type"] == "unsubscribed"
    # when the task is no longer live
    await database_sync_to_async(type(task).objects.filter(pk=task.pk).update)(status="cancelled")
    # then
    await refused(ws, "out_of_scope", stream=stream)
    await ws.disconnect()


async def test_a_command_post_opens_the_incident_only_to_people_eligible_for_it(
    cast: Cast,
) -> None:
    # given: post rows naming another town's operator as commander and an account with
    # no role as member (written before docs/roles.md's rule, or by hand)
    @database_sync_to_async
    def given() -> None:
        post = CommandPost.objects.create(
            incident=cast.incident,
            commander=cast.fengxi_operator,
            lat=34.27,
            lng=108.85,
            established_at=timezone.now(),
        )
        post.members.add(cast.responder)

    await given()
    stream = f"incident.{cast.incident.pk}"
    commander = await connected(cast.fengxi_operator)
    member = await connected(cast.responder)
    # then: the post opens nothing to them (apps.dispatch.policies.on_command_post)
    await refused(commander, "out_of_scope", stream=stream)
    await refused(member, "out_of_scope", stream=stream)

    # and once the member's team works the incident, they follow it, post or not
    @database_sync_to_async
    def sent() -> None:
        team = TeamFactory(home_region=cast.tree.diaotai)
        TeamMemberFactory(team=team, user=cast.responder)
        DispatchTaskFactory(incident=cast.incident, team=team, status="accepted")

    await sent()
    await granted(member, stream)
    await commander.disconnect()
    await member.disconnect()


# --- report.<id> ----------------------------------------------------------------------------


async def test_anyone_with_the_tracking_token_follows_the_report(cast: Cast) -> None:
    ws = await connected()  # anonymous
    answer = await ask(ws, type="subscribe", stream="report", token=cast.report.token, ref=7)
    assert answer == {
        "type": "subscribed",
        "stream": f"report.{cast.report.pk}",
        "last_seq": 0,
        "replayed": 0,
        "ref": 7,
    }
    await ws.disconnect()


async def test_a_wrong_token_is_refused_and_never_echoed(cast: Cast) -> None:
    ws = await connected()
    error = await refused(ws, "out_of_scope", stream="report", token="x" * 43)
    assert "stream" not in error
    assert "x" * 43 not in str(error)
    # a real token naming a different report is refused too
    other = await database_sync_to_async(ReportFactory)(region=cast.tree.sanqiao)
    await refused(ws, "out_of_scope", stream=f"report.{other.pk}", token=cast.report.token)
    await ws.disconnect()


async def test_the_registered_reporter_follows_their_report_by_id_others_do_not(
    cast: Cast,
) -> None:
    stream = f"report.{cast.report.pk}"
    mine = await connected(cast.citizen)
    await granted(mine, stream)
    theirs = await connected(cast.responder)
    await refused(theirs, "out_of_scope", stream=stream)
    # staff follow incidents, not the citizen's view
    staff = await connected(cast.fengdong_operator)
    await refused(staff, "out_of_scope", stream=stream)
    for ws in (mine, theirs, staff):
        await ws.disconnect()


async def test_anonymous_sockets_may_not_subscribe_to_anything_else(cast: Cast) -> None:
    ws = await connected()
    for stream in (
        f"user.{cast.citizen.pk}",
        "region.fd-sanqiao",
        f"incident.{cast.incident.pk}",
        f"report.{cast.report.pk}",  # by id needs the reporter's login
    ):
        expected = "out_of_scope" if stream.startswith("report.") else "not_authenticated"
        await refused(ws, expected, stream=stream)
    await ws.disconnect()


# --- Malformed messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "subscribe", "stream": "incident.01"}, "invalid_stream"),
        ({"type": "subscribe", "stream": "team.4"}, "invalid_stream"),
        ({"type": "subscribe"}, "invalid_stream"),
        ({"type": "subscribe", "stream": "user.1", "since": -1}, "invalid_message"),
        ({"type": "subscribe", "stream": "user.1", "since": "5"}, "invalid_message"),
        ({"type": "subscribe", "stream": "user.1", "since": True}, "invalid_message"),
        ({"type": "subscribe", "stream": "report", "token": ""}, "invalid_message"),
        ({"type": "subscribe", "stream": "report", "token": "t" * 65}, "invalid_message"),
        ({"type": "unsubscribe", "stream": "nope"}, "invalid_stream"),
        ({"type": "dance"}, "unknown_message_type"),
        ({"stream": "user.1"}, "unknown_message_type"),
    ],
)
async def test_malformed_messages_get_an_error_frame_and_the_socket_stays_open(
    cast: Cast, message: dict[str, Any], code: str
) -> None:
    ws = await connected(cast.citizen)
    answer = await ask(ws, **message)
    assert (answer["type"], answer["code"]) == ("error", code)
    assert await ask(ws, type="ping") == {"type": "pong"}
    await ws.disconnect()


async def test_frames_that_are_not_a_json_object_get_an_error_frame(cast: Cast) -> None:
    ws = await connected(cast.citizen)
    for raw in ("not json", "[1, 2]", "42"):
        await ws.send_to(text_data=raw)
        assert (await ws.receive_json_from())["code"] == "invalid_message"
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from())["code"] == "invalid_message"
    await ws.disconnect()


async def test_error_frames_carry_a_readable_message_beside_the_code(cast: Cast) -> None:
    ws = await connected(cast.citizen)
    answer = await ask(ws, type="dance")
    assert answer == {
        "type": "error",
        "code": "unknown_message_type",
        "message": "Unknown message type.",  # English source; zh-Hans by Accept-Language
    }
    await ws.disconnect()


async def test_a_socket_holds_at_most_the_configured_number_of_streams(
    cast: Cast, settings: Any
) -> None:
    settings.EVENTS_MAX_STREAMS_PER_SOCKET = 2
    ws = await connected(cast.fengdong_operator)
    await granted(ws, "region.fengdong")
    await granted(ws, "region.fd-sanqiao")
    await granted(ws, "region.fengdong")  # re-subscribing is not another stream
    await refused(ws, "too_many_streams", stream=f"user.{cast.fengdong_operator.pk}")
    await ws.disconnect()

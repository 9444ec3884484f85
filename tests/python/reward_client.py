"""A Python client of `rl reward-server`, generated at run time from the project's proto.

Run by tests/reward_grpc.rs against a running server (rule-based arithmetic scorer, started
with a token, --max-batch 64, --max-item-kib 4 and --max-message-mib 1):

    python tests/python/reward_client.py --addr HOST:PORT --token TOKEN --proto-dir DIR --out TMP

It compiles crates/rl-proto/proto/rl/v1/reward.proto with grpc_tools.protoc into TMP, then checks
normal scoring, a deadline, bad requests (empty batch, too many items, an oversized item, a
message over the cap, bytes that are no message, bytes
that are not UTF-8, a missing token) and that Health still answers afterwards. Prints one JSON
line with the results and exits 0 only if every check passed.
"""

import argparse
import importlib
import json
import sys

import grpc
from grpc_tools import protoc


def generate(proto_dir, out):
    """Compiles reward.proto into `out` and imports the generated modules."""
    import grpc_tools

    include = grpc_tools.__path__[0] + "/_proto"
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "rl/v1/reward.proto",
    ])
    if code != 0:
        raise SystemExit(f"protoc failed with {code} on {proto_dir}/rl/v1/reward.proto")
    sys.path.insert(0, out)
    return importlib.import_module("rl.v1.reward_pb2"), importlib.import_module("rl.v1.reward_pb2_grpc")


def expect_error(call, code, needle):
    """Runs `call`, which must fail with `code` and a message containing `needle`."""
    try:
        call()
    except grpc.RpcError as e:
        assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
        assert needle in (e.details() or ""), f"{needle!r} not in {e.details()!r}"
        return e.details()
    raise AssertionError(f"expected {code}, but the call succeeded")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    pb, pb_grpc = generate(args.proto_dir, args.out)

    channel = grpc.insecure_channel(args.addr)
    stub = pb_grpc.RewardServiceStub(channel)
    auth = [("authorization", f"Bearer {args.token}")]

    def item(a, b, response, task_id="t"):
        return pb.ScoreItem(
            task_id=task_id,
            messages=[pb.ChatMessage(role="user", content=f"What is {a} + {b}?")],
            answer=str(a + b),
            response=response,
        )

    report = {}

    health = stub.Health(pb.RewardHealthRequest(), metadata=auth, timeout=10)
    assert health.scorer == "rule", health
    assert health.max_items == 64 and health.max_item_bytes == 4096, health
    report["health"] = {"scorer": health.scorer, "version": health.version, "capacity": health.capacity}

    # Normal scoring: right, wrong, empty (allowed, scores 0), metadata passed through.
    request = pb.ScoreRequest(items=[item(2, 3, "5"), item(2, 3, "The answer is 7"), item(1, 1, "")])
    request.items[0].metadata["note"] = json.dumps("from python")
    reply = stub.Score(request, metadata=auth, timeout=10)
    rewards = [r.score.reward for r in reply.results]
    assert [r.WhichOneof("result") for r in reply.results] == ["score"] * 3, reply
    assert rewards == [1.0, 0.0, 0.0], rewards
    assert reply.results[0].score.parts["correct"] == 1.0, reply.results[0]
    report["rewards"] = rewards

    # A bad item is refused alone.
    bad = item(1, 2, "3")
    bad.messages[0].role = "robot"
    reply = stub.Score(pb.ScoreRequest(items=[item(1, 2, "3"), bad]), metadata=auth, timeout=10)
    assert reply.results[0].score.reward == 1.0, reply
    assert "role \"robot\"" in reply.results[1].error, reply

    # A deadline (100 us) far shorter than scoring a full batch of 4000-byte replies takes:
    # DEADLINE_EXCEEDED, every time.
    big = pb.ScoreRequest(items=[item(i, i, f"{'so ' * 1300}{2 * i}") for i in range(64)])
    for _ in range(5):
        expect_error(lambda: stub.Score(big, metadata=auth, timeout=0.0001),
                     grpc.StatusCode.DEADLINE_EXCEEDED, "")
    report["deadline"] = "DEADLINE_EXCEEDED"

    # Bad requests.
    report["empty"] = expect_error(
        lambda: stub.Score(pb.ScoreRequest(), metadata=auth, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, "the batch is empty")
    too_many = pb.ScoreRequest(items=[item(1, 1, "2")] * 65)
    report["too_many"] = expect_error(
        lambda: stub.Score(too_many, metadata=auth, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, "65 items")
    oversized = pb.ScoreRequest(items=[item(1, 1, "2"), item(1, 1, "x" * 5000, task_id="big")])
    report["oversized"] = expect_error(
        lambda: stub.Score(oversized, metadata=auth, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, 'item 1 (task "big")')
    report["no_token"] = expect_error(
        lambda: stub.Score(pb.ScoreRequest(items=[item(1, 1, "2")]), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")
    report["wrong_token"] = expect_error(
        lambda: stub.Health(pb.RewardHealthRequest(), metadata=[("authorization", "Bearer nope")], timeout=10),
        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

    # Bytes that are not UTF-8 in `response` (field 5 of the item, field 1 of the request),
    # encoded by hand: the generated classes would refuse to build such a message.
    raw_item = b"\x2a\x02\xff\xfe"
    raw = b"\x0a" + bytes([len(raw_item)]) + raw_item
    score_raw = channel.unary_unary(
        "/rl.v1.RewardService/Score",
        request_serializer=lambda b: b,
        response_deserializer=pb.ScoreReply.FromString,
    )
    try:
        score_raw(raw, metadata=auth, timeout=10)
        raise AssertionError("invalid UTF-8 was accepted")
    except grpc.RpcError as e:
        assert "UTF-8" in (e.details() or ""), e.details()
        report["not_utf8"] = f"{e.code().name}: {e.details()}"
    # Bytes that are no ScoreRequest at all (a field tag with an invalid wire type).
    try:
        score_raw(b"\x0f\xff\xff\xff", metadata=auth, timeout=10)
        raise AssertionError("garbage was accepted")
    except grpc.RpcError as e:
        report["garbage"] = f"{e.code().name}: {e.details()}"
    # A message over the server's --max-message-mib (1 MiB).
    huge = pb.ScoreRequest(items=[item(1, 1, "x" * (2 << 20))])
    try:
        stub.Score(huge, metadata=auth, timeout=30)
        raise AssertionError("an oversized message was accepted")
    except grpc.RpcError as e:
        report["over_message_cap"] = f"{e.code().name}: {e.details()}"

    # The server still answers.
    health = stub.Health(pb.RewardHealthRequest(), metadata=auth, timeout=10)
    assert health.scorer == "rule"
    reply = stub.Score(pb.ScoreRequest(items=[item(4, 4, "8")]), metadata=auth, timeout=10)
    assert reply.results[0].score.reward == 1.0, reply
    report["after"] = "healthy"
    print(json.dumps({"all_checks_passed": True, **report}))


if __name__ == "__main__":
    main()

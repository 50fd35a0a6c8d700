#!/usr/bin/env python3
"""An independent client: Python grpcio stubs generated from the proto call a
real riskgate server (Evaluate, ReportOutcome, health, reflection).

Usage: check_client.py PATH/TO/riskgate   (starts and stops its own server)
"""
import json
import os
import subprocess
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(out):
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{ROOT}/proto", f"-I{include}", f"--python_out={out}",
        f"--grpc_python_out={out}", f"{ROOT}/proto/riskgate/v1/riskgate.proto",
    ])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)


def start(binary):
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--log-format", "json"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("message") == "riskgate serving":
            return proc, event["listen"]
    sys.exit("server did not start")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        generate(out)
        from riskgate.v1 import riskgate_pb2 as pb, riskgate_pb2_grpc as rpc

        proc, addr = start(binary)
        failures = 0
        passed = 0

        def check(name, cond, detail=""):
            nonlocal failures, passed
            if cond:
                passed += 1
                print(f"ok   {name}")
            else:
                failures += 1
                print(f"FAIL {name} {detail}")

        try:
            ch = grpc.insecure_channel(addr)
            grpc.channel_ready_future(ch).result(timeout=10)
            stub = rpc.RiskServiceStub(ch)
            req = pb.EvaluateRequest(
                user_id="py-alice", channel=pb.CHANNEL_WEB, ip_address="198.51.100.7",
                device=pb.Device(device_id="py-dev", user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
                credential_result=pb.CREDENTIAL_RESULT_VALID)
            r = stub.Evaluate(req, timeout=5)
            check("evaluate allows a clean first login", r.action == pb.ACTION_ALLOW, str(r))
            check("evaluate explains itself", any(x.code == "new_user" for x in r.reasons), str(r))
            check("score in [0,1]", 0.0 <= r.score <= 1.0)
            check("versions named", r.policy_version != "" and r.model_version != "")
            o = stub.ReportOutcome(pb.ReportOutcomeRequest(decision_id=r.decision_id, outcome=pb.OUTCOME_LOGIN_SUCCEEDED), timeout=5)
            check("report teaches the profile", o.profile_updated)
            r2 = stub.Evaluate(req, timeout=5)
            check("known device scores lower", r2.score < r.score, f"{r2.score} vs {r.score}")
            try:
                stub.Evaluate(pb.EvaluateRequest(user_id="x", channel=pb.CHANNEL_WEB, ip_address="999.1.1.1",
                                                 credential_result=pb.CREDENTIAL_RESULT_VALID), timeout=5)
                check("bad ip is rejected", False)
            except grpc.RpcError as e:
                check("bad ip is INVALID_ARGUMENT naming the field",
                      e.code() == grpc.StatusCode.INVALID_ARGUMENT and "`ip_address`" in e.details(), e.details())

            health = health_pb2_grpc.HealthStub(ch)
            for service in ["", "riskgate.v1.RiskService"]:
                h = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                check(f"health {service or '(server)'} SERVING", h.status == health_pb2.HealthCheckResponse.SERVING)

            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            answers = list(refl.ServerReflectionInfo(iter([
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="riskgate.v1.RiskService"),
            ]), timeout=5))
            names = [s.name for s in answers[0].list_services_response.service]
            check("reflection lists the services", "riskgate.v1.RiskService" in names and "grpc.health.v1.Health" in names, str(names))
            check("reflection serves the descriptor", len(answers[1].file_descriptor_response.file_descriptor_proto) > 0)
        finally:
            proc.terminate()
            code = proc.wait(timeout=20)
            check("server exits 0 on SIGTERM", code == 0, f"exit {code}")
        print(f"python-client: {passed} passed, {failures} failed")
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The receiver on one machine, no AWS account: starts moto (a local SQS) on a
# free port, creates a FIFO queue, runs webhook-receiver under
# `cargo lambda watch` (the Lambda Runtime API emulator), sends it every event
# in events/, prints each answer and what reached the queue, then stops.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import moto.server, flask, flask_cors, boto3' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6"
command -v cargo-lambda >/dev/null || python3 -m pip install --quiet --disable-pip-version-check cargo-lambda

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sqs_port=$(free_port)
invoke_port=$(free_port)
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:${sqs_port}"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

python3 -m moto.server -H 127.0.0.1 -p "$sqs_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/${sqs_port}") 2>/dev/null && break; sleep 0.1; done

queue_url=$(python3 -c '
import boto3, os
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(sqs.create_queue(QueueName="intercom.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"])')
echo "local SQS queue: ${queue_url}"
echo "test secret:     local-test-secret"

cargo lambda watch --invoke-port "$invoke_port" --package webhook-receiver \
  --env-var "QUEUE_URL=${queue_url}" --env-var "INTERCOM_CLIENT_SECRET=local-test-secret" \
  --env-var "AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}" --env-var "AWS_ACCESS_KEY_ID=testing" \
  --env-var "AWS_SECRET_ACCESS_KEY=testing" --env-var "AWS_REGION=us-east-1" &
pids+=($!)
for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/${invoke_port}") 2>/dev/null && break; sleep 0.5; done

accepted=0
for event in events/*.json; do
  answer=$(cargo lambda invoke webhook-receiver --invoke-port "$invoke_port" --data-file "$event" 2>&1 | tail -n 1)
  printf '%-50s %s\n' "$(basename "$event")" "$answer"
  case "$answer" in *'"statusCode":202'*) accepted=$((accepted + 1)) ;; esac
done

python3 -c '
import boto3, os, sys
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
url = sys.argv[1]
seen = 0
while True:
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
    if not batch:
        break
    for m in batch:
        seen += 1
        a = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
        group = m["Attributes"].get("MessageGroupId")
        print("queued:", a.get("topic"), a.get("notification_id"), "group=" + str(group), "bytes=" + str(len(m["Body"])))
print(f"{seen} message(s) in the queue for {sys.argv[2]} accepted notification(s)")
sys.exit(0 if seen == int(sys.argv[2]) and seen > 0 else 1)' "$queue_url" "$accepted"

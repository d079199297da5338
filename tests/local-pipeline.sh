#!/usr/bin/env bash
# The whole pipeline on one machine, no AWS account: starts moto (a local SQS)
# on a free port, creates a FIFO queue, runs both functions under
# `cargo lambda watch` (the Lambda Runtime API emulator), sends every HTTP
# event in events/ to webhook-receiver, reads back what reached the queue,
# hands it to topic-processor as an SQS event, prints everything, then stops.
# Fails unless every 202 is in the queue and the processor fails no record.
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

# Built first: cargo lambda watch otherwise compiles a function at its first
# invocation, inside that invocation's deadline.
cargo build --bins --quiet
cargo lambda watch --invoke-port "$invoke_port" \
  --env-var "QUEUE_URL=${queue_url}" --env-var "INTERCOM_CLIENT_SECRET=local-test-secret" \
  --env-var "AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}" --env-var "AWS_ACCESS_KEY_ID=testing" \
  --env-var "AWS_SECRET_ACCESS_KEY=testing" --env-var "AWS_REGION=us-east-1" --env-var "RUST_LOG=${RUST_LOG:-info}" &
pids+=($!)
for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/${invoke_port}") 2>/dev/null && break; sleep 0.5; done

accepted=0
for event in events/*.json; do
  case "$(basename "$event")" in sqs-*) continue ;; esac
  answer=$(cargo lambda invoke webhook-receiver --invoke-port "$invoke_port" --data-file "$event" 2>&1 | tail -n 1)
  printf '%-50s %s\n' "$(basename "$event")" "$answer"
  case "$answer" in *'"statusCode":202'*) accepted=$((accepted + 1)) ;; esac
done

batch_file=$(mktemp)
# The SQS event Lambda would deliver for what is queued, built by the same
# code that builds every SQS record in the tests (intercom-fixtures).
# The binary `cargo build --bins` made above (a `cargo run -p` would build it
# again with other features, minutes on a fresh machine).
"${CARGO_TARGET_DIR:-target}/debug/intercom-dev" sqs-event "$queue_url" > "$batch_file"
queued=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["Records"]))' "$batch_file")
echo "${queued} message(s) in the queue for ${accepted} accepted notification(s)"
if [ "$queued" -ne "$accepted" ] || [ "$accepted" -eq 0 ]; then
  echo "the queue does not hold exactly the accepted notifications"
  exit 1
fi

answer=$(cargo lambda invoke topic-processor --invoke-port "$invoke_port" --data-file "$batch_file" 2>&1 | tail -n 1)
rm -f "$batch_file"
echo "topic-processor answered: ${answer}"
case "$answer" in *'"batchItemFailures":[]'*) ;; *) echo "the processor failed records"; exit 1 ;; esac

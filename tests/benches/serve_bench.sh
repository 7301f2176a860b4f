#!/usr/bin/env bash
# Serving benchmark: our server vs llama.cpp's server (llama-cpp-python[server]) on the same GGUF,
# 2 threads, the same instruction, concurrency 1/4/16/32, in one sitting (run on a quiet machine).
#
#   PYTHON=/path/to/venv/python bash tests/benches/serve_bench.sh [RECORDS_DIR]
#
# CONC (1,4,16,32), MAXTOK (64), ROUNDS (1; more runs the levels over again, alternating, and
# ends with each level's median tok/s and its ratio to concurrency 1 per round) and
# REQS (requests per client, 2) are read from the environment.
#
# Prints one JSON line per (target, concurrency) from the load generator.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
RECORDS=${1:-tests/fixtures/ptbxl-raw/records500/06000}
GGUF=${MEIT_HOME:-$HOME/.cache/meit}/models/SmolLM2-135M-Instruct.Q4_1.gguf
CONC=${CONC:-1,4,16,32}
MAXTOK=${MAXTOK:-64}
ROUNDS=${ROUNDS:-1}
REQS=${REQS:-2}
PRECISION=${PRECISION:-q8_0}
# "none": the untrained encoder writes to max_tokens like the peer, so tok/s compare like for like.
ADAPTER=${ADAPTER:-none}

cargo build --release --bin meit --bench load >/dev/null
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)

wait_ready() { for _ in $(seq 1 120); do curl -sf "$1" >/dev/null && return 0; sleep 1; done; return 1; }

./target/release/meit serve --port 18180 --set model.precision="$PRECISION" --set model.adapter="$ADAPTER" --set engine.max_running_sequences=32 >/tmp/meit-bench-serve.log 2>&1 &
MEIT_PID=$!
trap 'kill $MEIT_PID 2>/dev/null || true; kill ${LLAMA_PID:-0} 2>/dev/null || true' EXIT
wait_ready http://127.0.0.1:18180/ready
"$LOAD" --url http://127.0.0.1:18180 --target meit --records "$RECORDS" --concurrency "$CONC" --max-tokens "$MAXTOK" --rounds "$ROUNDS" --requests-per-worker "$REQS"
kill $MEIT_PID; wait $MEIT_PID 2>/dev/null || true

"$PYTHON" -m llama_cpp.server --model "$GGUF" --n_threads 2 --n_ctx 8192 --port 18181 >/tmp/llama-bench-serve.log 2>&1 &
LLAMA_PID=$!
wait_ready http://127.0.0.1:18181/v1/models
"$LOAD" --url http://127.0.0.1:18181 --target openai --records "$RECORDS" --concurrency "$CONC" --max-tokens "$MAXTOK" --rounds "$ROUNDS" --requests-per-worker "$REQS"

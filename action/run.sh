#!/usr/bin/env bash
# The step of the GitHub Action (action.yml). Inputs come as INPUT_* variables; GitHub provides GITHUB_ACTION_PATH,
# GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STEP_SUMMARY and RUNNER_TEMP.
set -euo pipefail

command="${INPUT_COMMAND:-validate}"
case "$command" in
  validate | drift | plan | status | test-connection) ;;
  *) echo "::error title=astro-scim::unknown command '$command' (validate, drift, plan, status, test-connection)"
     exit 2 ;;
esac

# The core install for validate (offline: no IdP SDKs), [all] for the rest. One venv per set of extras and
# version: a validate step's core install is never taken for a later drift step (it would stop at the missing SDK).
extras="all"
[ "$command" = validate ] && extras=""
temp="${RUNNER_TEMP:-/tmp}"
if [ "${INPUT_USE_INSTALLED:-false}" = "true" ]; then  # the workflow installed astro-scim itself (a cached venv)
  tool="$(command -v astro-scim || true)"
  if [ -z "$tool" ]; then
    echo "::error title=astro-scim::use-installed is true but no astro-scim is on PATH"
    exit 2
  fi
else
  venv="$temp/astro-scim-${extras:-core}${INPUT_VERSION:+-$INPUT_VERSION}"
  if [ ! -x "$venv/bin/astro-scim" ]; then
    # The Python setup-python installed (its python-path output), without making it the job's python.
    if [ -n "${INPUT_VERSION:-}" ]; then
      spec=("astro-scim-connector${extras:+[$extras]}==${INPUT_VERSION}")
    else  # this action's own copy, with the dependency versions its CI tested together
      spec=(-c "${GITHUB_ACTION_PATH:?}/constraints.txt" "${GITHUB_ACTION_PATH}${extras:+[$extras]}")
    fi
    # A failed install is no finding: exit 2 with an annotation and the exit-code output (set -e exited 1 with
    # neither, read as "findings" by a workflow reading the step's result), and no half-made venv left to reuse.
    if ! "${INPUT_PYTHON:-python3}" -m venv "$venv" \
        || ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${spec[@]}"; then
      rm -rf "$venv"
      echo "::error title=astro-scim::could not install ${spec[*]} (see the pip output above)"
      if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "exit-code=2" >> "$GITHUB_OUTPUT"; fi
      exit 2
    fi
  fi
  tool="$venv/bin/astro-scim"
  # Later steps can call astro-scim too: only it goes on their PATH (not the venv's python and pip, which would
  # catch a later `pip install`), the [all] install once there is one.
  bin="$temp/astro-scim-bin"
  mkdir -p "$bin"
  full="$temp/astro-scim-all${INPUT_VERSION:+-$INPUT_VERSION}/bin/astro-scim"
  if [ -x "$full" ]; then ln -sf "$full" "$bin/astro-scim"; else ln -sf "$tool" "$bin/astro-scim"; fi
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$bin" >> "$GITHUB_PATH"; fi
fi

config=(--config "${INPUT_CONFIG:-astro-scim.yaml}" --idp "${INPUT_IDP:-all}")
case "$command" in
  # --format github prints ::error/::warning annotations and, with GITHUB_STEP_SUMMARY set, appends the markdown
  # report to the job summary.
  # paths: one per line (a YAML block: a path may hold spaces), or on one line separated by spaces
  validate) paths=()
            given="${INPUT_PATHS:-mappings/}"
            if [[ "$given" == *$'\n'* ]]; then
              while IFS= read -r line || [ -n "$line" ]; do
                line="${line%$'\r'}"
                [ -n "${line//[[:space:]]/}" ] && paths+=("$line")
              done <<< "$given"
            else
              read -r -a paths <<< "$given"
            fi
            args=(validate --format github "${paths[@]}") ;;
  drift) args=(drift --format github "${config[@]}") ;;
  plan) args=(plan --exit-code "${config[@]}") ;;
  *) args=("$command" "${config[@]}") ;;
esac

set +e
if [ "$command" = validate ] || [ "$command" = drift ]; then
  "$tool" "${args[@]}"
  code=$?
else  # text output: shown in the log and, fenced, in the job summary
  out="$("$tool" "${args[@]}" 2>&1)"
  code=$?
  printf '%s\n' "$out"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    # A fence longer than any run of backticks in the output (a name may hold ```): the block cannot end early.
    longest=$(printf '%s' "$out" | { grep -o '`\+' || true; } | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
    fence='```'
    while [ "${#fence}" -le "$longest" ]; do fence="$fence\`"; done
    printf '### astro-scim %s (exit %s)\n\n%s\n%s\n%s\n' "$command" "$code" "$fence" "$out" "$fence" \
      >> "$GITHUB_STEP_SUMMARY"
  fi
fi
set -e

[ -n "${GITHUB_OUTPUT:-}" ] && echo "exit-code=$code" >> "$GITHUB_OUTPUT"
if [ "$code" = 1 ] && [ "${INPUT_FAIL_ON_FINDINGS:-true}" != "true" ]; then
  exit 0
fi
exit "$code"
